"""Configuration checks that run before anything is compiled, with messages that say what to change."""

from __future__ import annotations


from skel_llm import fs
from skel_llm.data import protocols, sources
from skel_llm.skeleton import topology
from skel_llm.text import prompts

REQUIRED = ("seed", "total_steps", "batch_size", "log_every", "mesh", "sharding_rules", "trainable",
            "optim", "model", "render", "data", "text", "checkpoint", "evals")


def check_config(config, workdir: str | None = None) -> None:
  missing = [k for k in REQUIRED if k not in config]
  if missing:
    raise ValueError(f"config lacks {missing}; start from one of configs/*.py")
  if config.total_steps <= 0:
    raise ValueError(f"config.total_steps must be positive, got {config.total_steps}")
  if config.batch_size <= 0:
    raise ValueError(f"config.batch_size must be positive, got {config.batch_size}")
  if config.log_every <= 0:
    raise ValueError(f"config.log_every must be positive, got {config.log_every}")
  d = config.data
  if d.source not in sources.KINDS:
    raise ValueError(f"config.data.source {d.source!r} is unknown; use one of {sources.KINDS}")
  from skel_llm.data import pipeline
  pipeline.parse_task_mix(d.get("task"))  # one task or a weighted mixture; raises naming it
  if d.get("eval_task") not in prompts.TASKS:
    raise ValueError(f"config.data.eval_task {d.get('eval_task')!r} is unknown; use one of "
                     f"{prompts.TASKS}")
  for key, value in (("data.topology", d.get("topology")),
                     ("render.topology", config.render.get("topology"))):
    if value not in topology.names():
      raise ValueError(f"config.{key} {value!r} is unknown; use one of {topology.names()}")
  if config.render.topology != d.topology:
    raise ValueError(f"config.render.topology {config.render.topology!r} differs from "
                     f"config.data.topology {d.topology!r}: the renderer draws the data's "
                     f"skeleton, set both to the same format")
  _check_mixture(config)
  from skel_llm.render import camera, layout, raster
  from skel_llm.train import model as model_lib
  r = config.render
  for key, value, known in (("kind", r.get("kind", "draction"), model_lib.RENDER_KINDS),
                            ("persons", r.get("persons", "joint"), model_lib.PERSON_MODES),
                            ("blend", r.get("blend", "topology"), layout.BLEND_RULES)):
    if value not in known:
      raise ValueError(f"config.render.{key} {value!r} is unknown; use one of {list(known)}")
  tile = r.get("tile", raster.DEFAULT_TILE)
  if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
    raise ValueError(f"config.render.tile {tile!r}: the tiled rasteriser's tile side must be a "
                     f"positive integer number of pixels (the default is 16)")
  capacity = r.get("capacity", 0)
  if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
    raise ValueError(f"config.render.capacity {capacity!r}: the (tile, Gaussian) pairs one frame "
                     f"may hold must be a positive integer, or 0 for the rasteriser's default")
  if r.get("init") and r.get("blend", "topology") != "topology":
    raise ValueError(f"config.render.blend {r.blend!r} with config.render.init {r.init}: a "
                     f"released renderer holds topology blend weights; leave render.init "
                     f"empty for a blend ablation")
  if d.get("topologies") and (r.get("kind", "draction"), r.get("persons", "joint"),
                              r.get("blend", "topology")) != ("draction", "joint", "topology"):
    raise ValueError(f"config.data.topologies {list(d.topologies)}: mixed-format training "
                     f"draws with DrAction, persons joint, blend topology; leave "
                     f"config.render.kind / persons / blend at their defaults")
  if d.get("placement", "auto") not in camera.RULES:
    raise ValueError(f"config.data.placement {d.get('placement')!r} is unknown; use one of "
                     f"{list(camera.RULES)}")
  if d.get("protocol"):
    if d.protocol not in protocols.names():
      raise ValueError(f"config.data.protocol {d.protocol!r} is unknown; use one of "
                       f"{protocols.names()}")
    if d.source != "tfds":
      raise ValueError(f"config.data.protocol {d.protocol!r} selects classes of a TFDS build; "
                       f"with config.data.source={d.source!r} leave it empty (the synthetic "
                       f"source takes its classes from config.data.classes)")
  if d.get("confusable_file") and not fs.isfile(d.confusable_file):
    raise FileNotFoundError(f"config.data.confusable_file {d.confusable_file} does not exist")
  if d.get("rationale_file") and not fs.isfile(d.rationale_file):
    raise FileNotFoundError(f"config.data.rationale_file {d.rationale_file} does not exist")
  if d.source == "tfds" and d.get("data_dir") and not fs.isdir(d.data_dir):
    raise FileNotFoundError(f"config.data.data_dir {d.data_dir} does not exist; build the "
                            f"dataset with the command in data_prep/ first")
  init_from = config.get("init_from", "")
  if init_from:
    folder = init_from[3:] if init_from.startswith("hf:") else init_from
    # A previous stage's workdir or a Hugging Face folder may be on gs:// (the latter is
    # mirrored into fs.cache_root() when it is read).
    if not fs.isdir(folder):
      what = ("a Hugging Face model folder (config.json + *.safetensors)"
              if init_from.startswith("hf:") else "the previous stage's --workdir")
      raise FileNotFoundError(f"config.init_from {init_from!r}: folder {folder} does not exist; "
                              f"it must be {what}")
  tok = config.text.tokenizer
  if tok != "tiny" and not fs.isdir(tok):
    raise FileNotFoundError(f"config.text.tokenizer {tok!r}: expected 'tiny' or a folder with "
                            f"tokenizer.json")
  if config.text.template != "internvl2_5":
    raise ValueError(f"config.text.template {config.text.template!r} is unknown; use 'internvl2_5'")
  if config.model.preset not in ("tiny", "internvl3_1b", "internvl3_2b", "internvl3_8b"):
    raise ValueError(f"config.model.preset {config.model.preset!r} is unknown; use 'tiny', "
                     f"'internvl3_1b', 'internvl3_2b' or 'internvl3_8b'")
  if config.checkpoint.every_steps <= 0:
    raise ValueError("config.checkpoint.every_steps must be positive")
  from skel_llm.eval import registry
  registry.check(config)
  del workdir


def _check_mixture(config) -> None:
  """`config.data.topologies` / `topology_weights` of mixed-format training (render.mixed)."""
  d = config.data
  topos = d.get("topologies") or ()
  if isinstance(topos, str) or not all(isinstance(t, str) for t in topos):
    raise ValueError(f"config.data.topologies {topos!r} must be a tuple of topology names, e.g. "
                     f"('ntu25', 'smpl22')")
  weights = d.get("topology_weights") or ()
  names = tuple(d.get("tfds_names") or ())
  if not topos:
    if weights:
      raise ValueError(f"config.data.topology_weights {tuple(weights)} given without "
                       f"config.data.topologies")
    if names:
      raise ValueError(f"config.data.tfds_names {names} given without config.data.topologies "
                       f"(one build per topology); a single build is config.data.tfds_name")
    return
  if len(topos) < 2:
    raise ValueError(f"config.data.topologies {tuple(topos)}: a mixture needs at least two "
                     f"topologies (leave it empty to train on config.data.topology alone)")
  try:
    weights = tuple(float(w) for w in weights)
  except (TypeError, ValueError):
    raise ValueError(f"config.data.topology_weights {weights!r} must be numbers") from None
  if d.source == "tfds":
    if len(names) != len(topos):
      raise ValueError(f"config.data.tfds_names {names} must name one TFDS build per topology "
                       f"of config.data.topologies {tuple(topos)} (same order)")
  elif d.source == "synthetic":
    if names:
      raise ValueError(f"config.data.tfds_names {names} is for config.data.source='tfds'; the "
                       f"synthetic source writes every topology itself")
  else:
    raise ValueError(f"config.data.topologies {tuple(topos)}: mixed-format training reads "
                     f"config.data.source 'synthetic' or 'tfds', got {d.source!r}")
  from skel_llm.data import sources
  sources.mixture(d)  # weights: one per topology, positive and finite
  from skel_llm.render import layout, mixed
  r = config.render
  spb = layout.build_layout(r.topology).samples_per_bone if not r.get("init") else None
  if spb is None:  # a released checkpoint: its layout is 10 samples per bone
    spb = (10,) * topology.get(r.topology).num_bones
  mixed.build(r.topology, spb, topos)  # names known, no repeats, render.topology among them
