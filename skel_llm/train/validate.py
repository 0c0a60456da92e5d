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
  from skel_llm.render import camera
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
