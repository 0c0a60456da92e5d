"""Builders from config: tokenizer, prompt encoder, data pipelines, the composed model.

The one place that knows the constructors of the other packages
(`skel_llm.render`, `skel_llm.models`, `skel_llm.data`): adapters to their APIs
live here so that the step and the trainer stay generic.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import jax
from flax import nnx

from skel_llm import fs
from skel_llm.data import pipeline as pipeline_lib
from skel_llm.render import raster
from skel_llm.text import chat
from skel_llm.text import encode as encode_lib
from skel_llm.train import model as model_lib

log = logging.getLogger(__name__)

forward = model_lib.forward
forward_with_stats = model_lib.forward_with_stats
forward_hidden = model_lib.forward_hidden


def tokenizer(config) -> encode_lib.TextTokenizer:
  """`config.text.tokenizer`: 'tiny' (the embedded BPE) or a folder with tokenizer.json."""
  from skel_llm import models
  from skel_llm import fs
  folder = (models.TINY_TOKENIZER_DIR if config.text.tokenizer == "tiny"
            else fs.cached_folder(config.text.tokenizer))  # gs://: its local mirror
  return encode_lib.TextTokenizer(models.load_tokenizer(folder))


def tokens_per_image(config) -> int:
  """Visual tokens per frame: `model.visual_tokens_per_frame` when set (foreground
  sparsification), else every cell, (S / patch)^2 * downsample_ratio^2."""
  m = config.model
  if m.get("visual_tokens_per_frame", 0):
    return int(m.visual_tokens_per_frame)
  grid = config.render.image_size // m.patch_size
  return int(round(grid * grid * m.downsample_ratio ** 2))


def encoder(config, tok: encode_lib.TextTokenizer) -> encode_lib.ConversationEncoder:
  t = config.text
  system = {"short": chat.SHORT_SYSTEM, "internvl": chat.INTERNVL_SYSTEM, "none": ""}.get(
      t.system, t.system)
  template = chat.get_template(t.template, tokens_per_image=tokens_per_image(config),
                               system=system)
  return encode_lib.ConversationEncoder(tok, template, config.data.max_len)


def pipeline(config, enc: encode_lib.ConversationEncoder, split: str, *,
             global_batch: int | None = None, whole_batch: bool = False,
             rows: Sequence[int] | None = None):
  """(Pipeline, source) of 'train' or 'eval'.

  Each host reads `rows` of every global batch (default: its process_index-th equal share),
  or the whole batch when `whole_batch`.
  """
  training = split == "train"
  pipe, source = pipeline_lib.make_pipeline(
      config.data, split, encoder=enc,
      global_batch=global_batch or config.batch_size, seed=config.data.seed, training=training,
      num_frames=config.render.num_frames,
      process_index=0 if whole_batch else jax.process_index(),
      process_count=1 if whole_batch else jax.process_count(),
      rows=None if whole_batch else rows)
  return pipe, source


def mllm_config(config, tok: encode_lib.TextTokenizer):
  """The InternVLConfig of `config.model`: tiny (sized by config) or a published preset."""
  from skel_llm import models
  m = config.model
  lora = None
  if m.get("lora_rank", 0):
    lora = models.LoRAConfig(rank=m.lora_rank, alpha=m.lora_alpha, dropout=m.lora_dropout)
  common = dict(image_size=config.render.image_size, downsample_ratio=m.downsample_ratio,
                image_token_id=tok.token_id(chat.IMG_CONTEXT), dtype=m.dtype,
                param_dtype=m.param_dtype, remat=m.get("remat", False),
                vision_remat=m.get("vision_remat", "") or None,
                scan_layers=bool(m.get("scan_layers", False)), lora=lora,
                visual_tokens_per_frame=int(m.get("visual_tokens_per_frame", 0)))
  if m.preset == "tiny":
    vision = models.VisionConfig(
        hidden_size=m.vision_width, num_layers=m.vision_layers, num_heads=m.vision_heads,
        intermediate_size=m.vision_mlp, image_size=config.render.image_size,
        patch_size=m.patch_size)
    text = models.TextConfig(
        vocab_size=tok.vocab_size, hidden_size=m.text_width, num_layers=m.text_layers,
        num_heads=m.text_heads, num_kv_heads=m.text_kv_heads,
        head_dim=m.text_width // m.text_heads, intermediate_size=m.text_mlp,
        tie_word_embeddings=True, max_position_embeddings=max(4096, config.data.max_len))
    return models.InternVLConfig(vision=vision, text=text, **common)
  cfg = getattr(models, m.preset)(**common)
  if cfg.text.vocab_size < tok.vocab_size:
    raise ValueError(f"config.text.tokenizer has {tok.vocab_size} tokens but the "
                     f"{m.preset} vocabulary has {cfg.text.vocab_size}")
  return cfg


def renderer_factory(config) -> Callable[[nnx.Rngs], nnx.Module]:
  """Builds DrAction: fresh (`config.render.init` empty) or from a released checkpoint."""
  from skel_llm import render
  r = config.render
  if r.init and not fs.isfile(r.init):
    raise FileNotFoundError(f"config.render.init {r.init} does not exist; give a released "
                            f"draction_*.safetensors file or leave it empty for a fresh renderer")
  # A gs:// release is mirrored once into the local cache with its .json.
  init = render.checkpoint.local_release(r.init) if r.init else ""

  def make(rngs: nnx.Rngs) -> nnx.Module:
    if init:
      return render.DrAction.from_released(init, topology=r.topology, rngs=rngs)
    return render.DrAction(r.topology, num_persons=config.data.max_persons,
                           enable_nfm=r.enable_nfm, blend=r.get("blend", "topology"), rngs=rngs)
  return make


def model_factory(config, tok: encode_lib.TextTokenizer) -> Callable[[], nnx.Module]:
  """A no-argument builder of the composed model with fresh (seeded) initialisation."""
  from skel_llm import models
  mcfg = mllm_config(config, tok)
  make_renderer = renderer_factory(config)
  r = config.render

  from skel_llm.data import sources
  mix = sources.mixture(config.data)
  mixed_layouts = {}

  def make() -> model_lib.SkeletonLLM:
    rngs = nnx.Rngs(params=config.seed, dropout=config.seed + 1)
    renderer = make_renderer(rngs)
    if mix is not None and "layouts" not in mixed_layouts:
      # Built once: the same static object in every model graph (a jit static argument).
      from skel_llm.render import mixed
      mixed_layouts["layouts"] = mixed.build(renderer.topology, renderer.samples_per_bone,
                                             mix[0])
    return model_lib.SkeletonLLM(renderer, models.InternVL(mcfg, rngs=rngs),
                                 num_frames=r.num_frames, image_size=r.image_size,
                                 fov_deg=r.fov_deg, dense=r.dense, stride=r.velocity_stride,
                                 kind=r.get("kind", "draction"),
                                 persons=r.get("persons", "joint"),
                                 mixed=mixed_layouts.get("layouts"),
                                 tile=r.get("tile", raster.DEFAULT_TILE),
                                 capacity=r.get("capacity", 0) or None)
  return make


def load_init_from(run, init_from: str) -> dict:
  """The state from the variables of the previous stage or of a HF folder, read straight into
  this run's shardings; only what they lack is freshly initialised (sets `run.rng_vars`)."""
  from skel_llm.train import checkpoint, state as state_lib
  abstract_vars = state_lib.merge_variables(run.layout.abstract)
  if init_from.startswith("hf:"):
    from skel_llm import fs
    # safe_open maps local files: a gs:// folder is mirrored into fs.cache_root() first.
    new_vars = _hf_variables(run, fs.cached_folder(init_from[3:]))
    from skel_llm.train import sharding as shd
    missing = [shd.path_str(p) for p, v in jax.tree_util.tree_flatten_with_path(
        new_vars, is_leaf=lambda x: x is None)[0] if v is None]
  else:
    new_vars, missing = checkpoint.restore_variables_from(init_from, abstract_vars)
  example = f" (e.g. {', '.join(missing[:4])})" if missing else ""
  print(f"[skel_llm] init_from {init_from}: {len(missing)} variables kept from fresh "
        f"init{example}", flush=True)
  state, run.rng_vars = state_lib.init_state_from(run.make_model, run.layout,
                                                  run.config.trainable, run.tx, new_vars)
  return state


def _hf_variables(run, folder: str) -> dict:
  """The mllm variables from a transformers / original InternVL folder, placed as they are read.

  The folder's tensors are checked against this run's model (`config.model`, without LoRA:
  adapters are not in checkpoints and keep their fresh initialisation) and each one goes
  straight to its shards in this run's layout, so no whole unsharded copy of the LLM is ever
  materialised. Renderer variables stay fresh (None here).
  """
  from skel_llm.models import checkpoint as hf_ckpt, pretrained
  from skel_llm.train import state as state_lib
  if pretrained.has_provenance(folder):
    # A built asset (skel_llm.tools.pretrain_demo): every file's sha256 is checked first.
    record = pretrained.verify(folder)
    print(f"[skel_llm] init_from hf:{folder}: sha256 of {sorted(record['files'])} verified "
          f"against its provenance.json", flush=True)
  mcfg = mllm_config(run.config, run.tokenizer).replace(lora=None)
  _, layout = hf_ckpt.read_config(folder)
  run_shardings = state_lib.merge_variables(run.layout.shardings)["mllm"]

  def place(path: str, var) -> jax.sharding.Sharding:
    del var  # load_params has checked its shape against this run's model
    sharding = _lookup(run_shardings, path)
    if sharding is None:
      raise ValueError(f"config.init_from hf:{folder}: mllm/{path} has no place in this run")
    return sharding

  try:
    mllm = hf_ckpt.load_params(folder, mcfg, layout, shardings=place)
  except ValueError as e:
    raise ValueError(f"config.init_from hf:{folder} does not fit config.model (preset "
                     f"{run.config.model.preset!r}); pick the preset of that checkpoint.\n{e}"
                     ) from e
  loaded = nnx.to_pure_dict(nnx.state(mllm, nnx.Param))

  def like(tree, sub):
    out = {}
    for k, v in tree.items():
      node = sub.get(k) if isinstance(sub, dict) else None
      out[k] = like(v, node if isinstance(node, dict) else {}) if isinstance(v, dict) else node
    return out
  return like(state_lib.merge_variables(run.layout.abstract), {"mllm": loaded})


def _lookup(tree: dict, path: str):
  """The leaf of a pure dict at 'a/0/b' (list indices are int keys), or None."""
  node = tree
  for part in path.split("/"):
    if not isinstance(node, dict):
      return None
    node = node.get(int(part), node.get(part)) if part.isdigit() else node.get(part)
  return node
