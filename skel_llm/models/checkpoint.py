"""Hugging Face checkpoints <-> Flax InternVL: table-driven conversion, load and export.

Two source layouts are read from a local folder (`config.json` + `*.safetensors`, sharded or
not, plus the tokenizer files):
- transformers (`InternVLForConditionalGeneration`, model_type "internvl"): keys
  `vision_tower.*`, `multi_modal_projector.*`, `language_model.model.*`,
  `language_model.lm_head.*` (older saves: `model.vision_tower.*`, `model.language_model.*`,
  `lm_head.*`).
- original (`InternVLChatModel`, model_type "internvl_chat"): `vision_model.*` with a fused
  qkv, `mlp1.{0,1,3}.*`, `language_model.*`. Its keys are first renamed to the transformers
  layout (`ORIGINAL_TO_HF`, the mapping of transformers' InternVL conversion script), then
  the same `HF_TO_FLAX` table applies.

Tensors stream one at a time; every shape is checked against the model's abstract state,
and a failure lists every unmapped source key and every target left unfilled.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from flax import nnx
from safetensors import safe_open

from skel_llm.models import config as config_lib
from skel_llm.models import safetensors_io
from skel_llm.models import tokenizer as tokenizer_lib
from skel_llm.models.config import InternVLConfig, LoRAConfig
from skel_llm.models.internvl import InternVL

ShardingFn = Callable[[str, nnx.Variable], "jax.sharding.Sharding | None"]

# transformers key (regex, full match) -> Flax state path (template) and transform:
#   linear: torch [out, in] -> [in, out];  conv: torch [D, C, P, P] -> [C*P*P, D];  copy.
_V = r"vision_tower\.encoder\.layer\.(\d+)\."
_T = r"language_model\.model\.layers\.(\d+)\."
HF_TO_FLAX: tuple[tuple[str, str, str], ...] = (
    (r"vision_tower\.embeddings\.cls_token", "vision_tower/cls_token", "copy"),
    (r"vision_tower\.embeddings\.position_embeddings", "vision_tower/position_embeddings", "copy"),
    (r"vision_tower\.embeddings\.patch_embeddings\.projection\.weight",
     "vision_tower/patch_embedding/kernel", "conv"),
    (r"vision_tower\.embeddings\.patch_embeddings\.projection\.bias",
     "vision_tower/patch_embedding/bias", "copy"),
    (_V + r"attention\.(q_proj|k_proj|v_proj|projection_layer)\.weight",
     r"vision_tower/layers/\1/attention/\2/kernel", "linear"),
    (_V + r"attention\.(q_proj|k_proj|v_proj|projection_layer)\.bias",
     r"vision_tower/layers/\1/attention/\2/bias", "copy"),
    (_V + r"attention\.(q_norm|k_norm)\.weight", r"vision_tower/layers/\1/attention/\2/scale",
     "copy"),
    (_V + r"mlp\.(fc1|fc2)\.weight", r"vision_tower/layers/\1/mlp/\2/kernel", "linear"),
    (_V + r"mlp\.(fc1|fc2)\.bias", r"vision_tower/layers/\1/mlp/\2/bias", "copy"),
    (_V + r"(layernorm_before|layernorm_after)\.weight", r"vision_tower/layers/\1/\2/scale",
     "copy"),
    (_V + r"(layernorm_before|layernorm_after)\.bias", r"vision_tower/layers/\1/\2/bias", "copy"),
    (_V + r"(lambda_1|lambda_2)", r"vision_tower/layers/\1/\2", "copy"),
    (r"vision_tower\.layernorm\.weight", "vision_tower/layernorm/scale", "copy"),
    (r"vision_tower\.layernorm\.bias", "vision_tower/layernorm/bias", "copy"),
    (r"multi_modal_projector\.layer_norm\.weight", "multi_modal_projector/layer_norm/scale",
     "copy"),
    (r"multi_modal_projector\.layer_norm\.bias", "multi_modal_projector/layer_norm/bias", "copy"),
    (r"multi_modal_projector\.(linear_1|linear_2)\.weight", r"multi_modal_projector/\1/kernel",
     "linear"),
    (r"multi_modal_projector\.(linear_1|linear_2)\.bias", r"multi_modal_projector/\1/bias",
     "copy"),
    (r"language_model\.model\.embed_tokens\.weight", "language_model/embed_tokens", "copy"),
    (_T + r"self_attn\.(q_proj|k_proj|v_proj|o_proj)\.weight",
     r"language_model/layers/\1/self_attn/\2/kernel", "linear"),
    (_T + r"self_attn\.(q_proj|k_proj|v_proj)\.bias",
     r"language_model/layers/\1/self_attn/\2/bias", "copy"),
    (_T + r"mlp\.(gate_proj|up_proj|down_proj)\.weight",
     r"language_model/layers/\1/mlp/\2/kernel", "linear"),
    (_T + r"(input_layernorm|post_attention_layernorm)\.weight",
     r"language_model/layers/\1/\2/scale", "copy"),
    (r"language_model\.model\.norm\.weight", "language_model/norm/scale", "copy"),
    (r"language_model\.lm_head\.weight", "lm_head", "linear"),
)

# Older transformers saves prefix the module tree differently; normalised before the table.
_HF_PREFIXES = (("model.vision_tower.", "vision_tower."),
                ("model.multi_modal_projector.", "multi_modal_projector."),
                ("model.language_model.", "language_model.model."),
                ("lm_head.", "language_model.lm_head."))

# Original InternVLChatModel key (regex) -> transformers key; "qkv" entries are split in three.
_OV = r"vision_model\.encoder\.layers\.(\d+)\."
ORIGINAL_TO_HF: tuple[tuple[str, str], ...] = (
    (r"vision_model\.embeddings\.class_embedding", "vision_tower.embeddings.cls_token"),
    (r"vision_model\.embeddings\.position_embedding",
     "vision_tower.embeddings.position_embeddings"),
    (r"vision_model\.embeddings\.patch_embedding\.(weight|bias)",
     r"vision_tower.embeddings.patch_embeddings.projection.\1"),
    (_OV + r"attn\.qkv\.(weight|bias)", r"vision_tower.encoder.layer.\1.attention.qkv.\2"),
    (_OV + r"attn\.proj\.(weight|bias)", r"vision_tower.encoder.layer.\1.attention.projection_layer.\2"),
    (_OV + r"attn\.(q_norm|k_norm)\.weight", r"vision_tower.encoder.layer.\1.attention.\2.weight"),
    (_OV + r"mlp\.(fc1|fc2)\.(weight|bias)", r"vision_tower.encoder.layer.\1.mlp.\2.\3"),
    (_OV + r"norm1\.(weight|bias)", r"vision_tower.encoder.layer.\1.layernorm_before.\2"),
    (_OV + r"norm2\.(weight|bias)", r"vision_tower.encoder.layer.\1.layernorm_after.\2"),
    (_OV + r"ls1", r"vision_tower.encoder.layer.\1.lambda_1"),
    (_OV + r"ls2", r"vision_tower.encoder.layer.\1.lambda_2"),
    (r"mlp1\.0\.(weight|bias)", r"multi_modal_projector.layer_norm.\1"),
    (r"mlp1\.1\.(weight|bias)", r"multi_modal_projector.linear_1.\1"),
    (r"mlp1\.3\.(weight|bias)", r"multi_modal_projector.linear_2.\1"),
    (r"language_model\.(model\..*|lm_head\.weight)", r"language_model.\1"),
)

_COMPILED_HF = [(re.compile(s), t, f) for s, t, f in HF_TO_FLAX]
_COMPILED_ORIG = [(re.compile(s), t) for s, t in ORIGINAL_TO_HF]


def _transform(kind: str, x: np.ndarray) -> np.ndarray:
  if kind == "linear":
    return x.T
  if kind == "conv":
    return x.reshape(x.shape[0], -1).T
  return x


def _inverse_transform(kind: str, x: np.ndarray, hf_shape: tuple[int, ...] | None) -> np.ndarray:
  if kind == "linear":
    return x.T
  if kind == "conv":
    return x.T.reshape(hf_shape)
  return x


def hf_to_flax_key(hf_key: str) -> tuple[str, str] | None:
  """(Flax path, transform) for a transformers-layout key, or None when unmapped."""
  for old, new in _HF_PREFIXES:
    if hf_key.startswith(old):
      hf_key = new + hf_key[len(old):]
      break
  for pattern, target, kind in _COMPILED_HF:
    m = pattern.fullmatch(hf_key)
    if m:
      return m.expand(target), kind
  return None


def original_to_hf(key: str, shape: tuple[int, ...]
                   ) -> list[tuple[str, tuple[int, int] | None]] | None:
  """transformers-layout keys for one original-layout tensor of `shape`, each with the rows
  (first-axis range) it takes: a fused qkv gives q, k and v, a third of the rows each."""
  for pattern, target in _COMPILED_ORIG:
    m = pattern.fullmatch(key)
    if m:
      new = m.expand(target)
      if ".attention.qkv." in new:
        if not shape or shape[0] % 3:
          raise ValueError(f"{key}: fused qkv first dimension {shape[0] if shape else None} is "
                           f"not divisible by 3")
        third = shape[0] // 3
        return [(new.replace(".qkv.", f".{n}."), (i * third, (i + 1) * third))
                for i, n in enumerate(("q_proj", "k_proj", "v_proj"))]
      return [(new, None)]
  return None


class TensorSlices:
  """One checkpoint tensor seen in the Flax layout (after its transform), read block by block.

  `read(index)` reads only the block `index` (a tuple of slices of the Flax shape) from the
  file through `safe_open(...).get_slice`: a transposed linear kernel reads the transposed
  block; a fused qkv part reads its rows; the (small) patch-embedding conv is read whole.
  """

  def __init__(self, handle, kind: str, rows: tuple[int, int] | None = None):
    self._handle = handle
    self.kind = kind
    self._rows = rows
    hf = list(handle.get_shape())
    if rows is not None:
      hf[0] = rows[1] - rows[0]
    self.hf_shape = tuple(hf)
    if kind == "linear" and len(hf) == 2:
      self.shape = (hf[1], hf[0])
    elif kind == "conv":
      self.shape = (int(np.prod(hf[1:])), hf[0])
    else:
      self.shape = tuple(hf)

  def _hf_block(self, index: tuple[slice, ...]) -> np.ndarray:
    if self._rows is not None:
      first = index[0]
      index = (slice(first.start + self._rows[0], first.stop + self._rows[0]),) + index[1:]
    return np.asarray(self._handle[index] if index else self._handle[...])

  def read(self, index: tuple[slice, ...] | None = None) -> np.ndarray:
    """The block `index` (default: all) of the tensor in the Flax layout."""
    full = tuple(slice(0, n) for n in self.shape)
    index = full if index is None else tuple(
        slice(*sl.indices(n)[:2]) for sl, n in zip(tuple(index) + full[len(index):], self.shape))
    if self.kind == "conv":
      whole = self._hf_block(tuple(slice(0, n) for n in self.hf_shape))
      return _transform("conv", whole)[index]
    if self.kind == "linear" and len(self.shape) == 2:
      return self._hf_block(index[::-1]).T
    return self._hf_block(index)


# --- config -----------------------------------------------------------------------------

def detect_layout(hf_config: dict[str, Any], folder: pathlib.Path) -> str:
  """"transformers" or "original", from config.json's model_type / architectures."""
  model_type = hf_config.get("model_type")
  archs = hf_config.get("architectures") or []
  if model_type == "internvl" or "InternVLForConditionalGeneration" in archs:
    return "transformers"
  if model_type == "internvl_chat" or "InternVLChatModel" in archs:
    return "original"
  raise ValueError(f"{folder / 'config.json'}: unknown checkpoint layout (model_type "
                   f"{model_type!r}, architectures {archs}); expected model_type 'internvl' "
                   f"(transformers) or 'internvl_chat' (original InternVLChatModel)")


def original_config(hf: dict[str, Any], image_token_id: int) -> InternVLConfig:
  """`InternVLConfig` from an original InternVLChatModel config.json."""
  v, t = hf["vision_config"], hf["llm_config"]
  if hf.get("ps_version", "v2") != "v2":
    raise ValueError(f"config.json ps_version: only pixel shuffle 'v2' is supported, got "
                     f"{hf.get('ps_version')!r}")
  if hf.get("select_layer", -1) != -1:
    raise ValueError(f"config.json select_layer: only -1 is supported, got {hf['select_layer']}")
  ckpt_size = int(v.get("image_size", 448))
  vision = config_lib.VisionConfig(
      hidden_size=v["hidden_size"], num_layers=v["num_hidden_layers"],
      num_heads=v["num_attention_heads"], intermediate_size=v["intermediate_size"],
      image_size=ckpt_size, patch_size=int(v.get("patch_size", 14)),
      qkv_bias=v.get("qkv_bias", True), qk_norm=v.get("qk_normalization", False),
      norm_type=v.get("norm_type", "layer_norm"), norm_eps=v.get("layer_norm_eps", 1e-6),
      layer_scale_init=v.get("initializer_factor", 0.1), use_mean_pooling=True,
      hidden_act=v.get("hidden_act", "gelu"))
  text = config_lib.text_from_hf_dict(t)
  return InternVLConfig(vision=vision, text=text,
                        image_size=int(hf.get("force_image_size") or ckpt_size),
                        downsample_ratio=hf.get("downsample_ratio", 0.5),
                        image_token_id=image_token_id)


def read_config(folder: str | pathlib.Path, tokenizer=None) -> tuple[InternVLConfig, str]:
  """(config, layout) of a checkpoint folder; the original layout takes the image token id
  from the tokenizer (its config.json does not store it)."""
  folder = pathlib.Path(folder)
  path = folder / "config.json"
  if not path.is_file():
    raise FileNotFoundError(f"{folder}: no config.json")
  with open(path, encoding="utf-8") as f:
    hf = json.load(f)
  layout = detect_layout(hf, folder)
  if layout == "transformers":
    return config_lib.from_hf_dict(hf), layout
  if tokenizer is None:
    tokenizer = tokenizer_lib.load_tokenizer(folder)
  image_token_id = tokenizer.convert_tokens_to_ids(tokenizer_lib.IMG_CONTEXT)
  if image_token_id is None or image_token_id == tokenizer.unk_token_id:
    raise ValueError(f"{folder}: the tokenizer has no {tokenizer_lib.IMG_CONTEXT} token")
  return original_config(hf, image_token_id), layout


# --- loading ----------------------------------------------------------------------------

def _path_str(path: tuple) -> str:
  return "/".join(str(getattr(p, "key", p)) for p in path)


def load_params(folder: str | pathlib.Path, config: InternVLConfig, layout: str,
                rng_seed: int = 0, shardings: ShardingFn | None = None) -> InternVL:
  """Builds `InternVL(config)` with weights streamed from `folder` (see module docstring).

  Files are opened one at a time (`safetensors.safe_open`); each tensor goes straight to its
  device shards (`shardings(path, abstract_variable)` when given, e.g. from the variable's
  logical axes), each shard read from the file on its own (`get_slice`), so a host reads
  only what its devices hold and never a whole tensor it does not need. LoRA adapters (not
  in checkpoints) and other non-checkpoint state are freshly initialised.

  Raises:
    ValueError: listing every unmapped source key, every missing target and every shape
      mismatch.
  """
  folder = pathlib.Path(folder)
  abstract = nnx.eval_shape(lambda: InternVL(config, rngs=nnx.Rngs(rng_seed)))
  graphdef, ckpt_state, rest_state = nnx.split(abstract, _is_checkpoint_param, ...)
  targets = {_path_str(p): v for p, v in nnx.to_flat_state(ckpt_state)}
  filled: dict[str, jax.Array] = {}
  # scan_layers: per-layer tensors wait on device (sharded like their stack) until the stack
  # is complete, then are stacked there.
  layer_slices: dict[str, dict[int, jax.Array]] = {}
  unmapped, mismatched, tied_head = [], [], None
  for file in safetensors_io.weight_files(folder):
    with safe_open(str(file), framework="np") as handle:
      for src_key in handle.keys():
        tensor = handle.get_slice(src_key)
        pieces = ([(src_key, None)] if layout == "transformers"
                  else original_to_hf(src_key, tuple(tensor.get_shape())))
        if pieces is None:
          unmapped.append(f"{file.name}:{src_key}")
          continue
        for hf_key, rows in pieces:
          mapped = hf_to_flax_key(hf_key)
          if mapped is None:
            unmapped.append(f"{file.name}:{src_key}")
            continue
          path, kind = mapped
          if path == "lm_head" and config.text.tie_word_embeddings:
            tied_head = (file, src_key, kind)  # A saved copy of the tied embedding: checked below.
            continue
          target, index = stacked_path(path) if config.scan_layers else (path, None)
          if target not in targets or (index is not None
                                       and index >= targets[target].shape[0]):
            unmapped.append(f"{file.name}:{src_key} (-> {path}, absent from this configuration)")
            continue
          src = TensorSlices(tensor, kind, rows)
          want = tuple(targets[target].shape)[0 if index is None else 1:]
          if src.shape != want:
            mismatched.append(f"{file.name}:{src_key} -> {path}: shape {src.shape}, expected "
                              f"{want}")
            continue
          sharding = shardings(target, targets[target]) if shardings is not None else None
          dtype = targets[target].dtype
          if index is None:
            filled[target] = _place(src, dtype, sharding)
            continue
          slices = layer_slices.setdefault(target, {})
          slices[index] = _place(src, dtype, _drop_leading_axis(sharding))
          if len(slices) == targets[target].shape[0]:
            filled[target] = _stack(layer_slices.pop(target), sharding)
  missing = sorted(set(targets) - set(filled) - set(layer_slices))
  for target, slices in sorted(layer_slices.items()):
    missing += [f"{target} layer {i}" for i in range(targets[target].shape[0]) if i not in slices]
  if unmapped or missing or mismatched:
    lines = [f"checkpoint {folder} ({layout} layout) does not match the model:"]
    lines += [f"  unmapped source key: {k}" for k in unmapped]
    lines += [f"  missing target: {k}" for k in missing]
    lines += [f"  shape mismatch: {k}" for k in mismatched]
    raise ValueError("\n".join(lines))
  if tied_head is not None:
    _check_tied_head(folder, tied_head, filled["language_model/embed_tokens"])
  ckpt_state = nnx.from_flat_state([(p, v.replace(filled[_path_str(p)]))
                                    for p, v in nnx.to_flat_state(ckpt_state)])
  if jax.tree.leaves(rest_state):
    rest_state = jax.jit(lambda: nnx.state(InternVL(config, rngs=nnx.Rngs(rng_seed)),
                                           _not_checkpoint))()
  return nnx.merge(graphdef, ckpt_state, rest_state)


def _check_tied_head(folder: pathlib.Path, tied_head, embed: jax.Array) -> None:
  """A saved lm_head of a tied model must equal the embedding: compared shard by shard, each
  host on the blocks its devices hold."""
  file, key, kind = tied_head
  with safe_open(str(file), framework="np") as handle:
    head = TensorSlices(handle.get_slice(key), kind)  # Flax layout [D, V]
    same = head.shape == tuple(embed.shape)[::-1]
    seen = set()
    for shard in embed.addressable_shards if same else ():
      block = tuple(slice(*sl.indices(n)[:2]) for sl, n in zip(shard.index, embed.shape))
      if block in seen:
        continue
      seen.add(block)
      part = head.read(block[::-1]).T.astype(embed.dtype)
      if not np.array_equal(part, np.asarray(shard.data)):
        same = False
        break
  if not same:
    raise ValueError(f"{folder}: tie_word_embeddings is set but lm_head.weight differs from "
                     f"embed_tokens.weight")


_LAYER_PATH = re.compile(r"(vision_tower|language_model)/layers/(\d+)/(.+)")


def stacked_path(path: str) -> tuple[str, int | None]:
  """('language_model/layers/self_attn/q_proj/kernel', 3) for the unrolled path of layer 3;
  (path, None) for a path outside the layer stacks."""
  m = _LAYER_PATH.fullmatch(path)
  if m is None:
    return path, None
  return f"{m[1]}/layers/{m[3]}", int(m[2])


def unstacked_path(path: str, index: int) -> str:
  """Inverse of `stacked_path`."""
  tower, rest = path.split("/layers/", 1)
  return f"{tower}/layers/{index}/{rest}"


def _drop_leading_axis(sharding):
  """The sharding of one layer of a stack sharded as `sharding` (None stays None)."""
  if sharding is None:
    return None
  if not isinstance(sharding, jax.sharding.NamedSharding):
    raise ValueError(f"scan_layers loading needs NamedShardings, got {sharding!r}")
  return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(*sharding.spec[1:]))


def _stack(slices: dict[int, jax.Array], sharding) -> jax.Array:
  """The per-layer arrays stacked in layer order, laid out as `sharding` (each slice freed)."""
  parts = [slices.pop(i) for i in range(len(slices))]
  stack = jax.jit(lambda *xs: jax.numpy.stack(xs), out_shardings=sharding)(*parts)
  for p in parts:
    p.delete()
  return stack


def _place(src: TensorSlices, dtype, sharding) -> jax.Array:
  """`src` on device as `dtype`; with a sharding, each device's block is read from the file
  on its own (no cross-host transfer or equality check: every host reads the same file)."""
  if sharding is None:
    return jax.device_put(np.asarray(src.read(), dtype=dtype))
  return jax.make_array_from_callback(src.shape, sharding,
                                      lambda index: np.asarray(src.read(index), dtype=dtype))


def _is_checkpoint_param(path, var) -> bool:
  return isinstance(var, nnx.Param) and not isinstance(var, nnx.LoRAParam)


def _not_checkpoint(path, var) -> bool:
  return not _is_checkpoint_param(path, var)


def load_pretrained(folder: str | pathlib.Path, dtype: str = "float32",
                    param_dtype: str | None = None, image_size: int | None = None,
                    lora: LoRAConfig | None = None, remat: bool | str = False,
                    scan_layers: bool = False,
                    shardings: ShardingFn | None = None):
  """(model, tokenizer, config) from a local InternVL checkpoint folder (either layout).

  Args:
    folder: holds config.json, *.safetensors and the tokenizer files.
    dtype: compute dtype ("float32" / "bfloat16").
    param_dtype: parameter dtype (default: `dtype`).
    image_size: frame resolution to run at (default: the checkpoint's; others interpolate the
      position embeddings).
    lora: adapters to add on the decoder (freshly initialised, B = 0).
    remat: rematerialise layers in the backward pass (a `layers.remat_policy` name).
    scan_layers: load into the stacked (scanned) layer layout.
    shardings: optional `(path, abstract variable) -> jax.sharding.Sharding` placing each
      tensor as it is read (the variable's `out_sharding` metadata holds its logical axes).
  """
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise FileNotFoundError(f"load_pretrained: {folder} is not a folder")
  tokenizer = tokenizer_lib.load_tokenizer(folder)
  config, layout = read_config(folder, tokenizer)
  if getattr(tokenizer, "chat_template", None) is None:
    # Original releases keep their template in code (`template: internvl2_5` in config.json).
    tokenizer.chat_template = tokenizer_lib.INTERNVL2_5_TEMPLATE
  changes = dict(dtype=dtype, param_dtype=param_dtype or dtype, lora=lora, remat=remat,
                 scan_layers=scan_layers)
  if image_size is not None:
    changes["image_size"] = image_size
  config = config.replace(**changes)
  model = load_params(folder, config, layout, shardings=shardings)
  return model, tokenizer, config


# --- export -----------------------------------------------------------------------------

def _to_host(x: jax.Array) -> np.ndarray:
  """One array whole on this host (a collective over all hosts when it spans several)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def iter_hf_tensors(model: InternVL, dtype: str | None = "float32"
                    ) -> Iterator[tuple[str, np.ndarray]]:
  """(transformers key, tensor) of `model` one at a time, LoRA adapters folded in.

  Only one transformers tensor is on the host at a time: a stacked (scan_layers) parameter
  is taken from its devices layer by layer, and each tensor becomes `dtype` (None: the
  parameter's own) on its own. Every process of a multi-host job must iterate (gathering a
  tensor that spans hosts is a collective).
  """
  config = model.config
  params = {_path_str(p): v[...] for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  stacked = config.scan_layers
  p = config.vision.patch_size
  conv_shape = (config.vision.hidden_size, 3, p, p)
  take = jax.jit(lambda x, i: x[i])
  for path, value in params.items():
    if "lora_" in path.rsplit("/", 1)[-1]:
      continue
    base = path[:-len("kernel")] if path.endswith("/kernel") else None
    lora = base is not None and base + "lora_a" in params
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(value.dtype)
    layers = range(value.shape[0]) if stacked and "/layers/" in path else [None]
    for i in layers:
      pick = (lambda x: x) if i is None else (lambda x, i=i: take(x, i))  # noqa: E731
      kernel = _to_host(pick(value))
      if lora:
        a = _to_host(pick(params[base + "lora_a"])).astype(np.float32)
        b = _to_host(pick(params[base + "lora_b"])).astype(np.float32)
        kernel = kernel.astype(np.float32) + _lora_scale(model, base) * (a @ b)
      hf_key, kind = flax_to_hf_key(path if i is None else unstacked_path(path, i))
      yield hf_key, np.ascontiguousarray(
          _inverse_transform(kind, kernel, conv_shape).astype(out_dtype))


def _lora_scale(model: InternVL, base: str) -> float:
  module = model
  for part in base.strip("/").split("/"):
    module = module[int(part)] if part.isdigit() else getattr(module, part)
  return module.lora_scale


def flax_to_hf_key(path: str) -> tuple[str, str]:
  """(transformers key, transform) for a Flax state path (inverse of `HF_TO_FLAX`)."""
  for pattern, target, kind in HF_TO_FLAX:
    tgt_re = re.escape(target)
    for i in range(1, 3):
      tgt_re = tgt_re.replace(re.escape(f"\\{i}"), f"(?P<g{i}>[^/]+)")
    m = re.fullmatch(tgt_re, path)
    if not m:
      continue
    groups = m.groupdict()
    key = pattern.replace("\\.", ".")
    for i in range(1, 3):
      if f"g{i}" in groups:
        key = re.sub(r"\([^()]*\)", groups[f"g{i}"], key, count=1)
    return key, kind
  raise KeyError(f"flax_to_hf_key: no table entry produces {path}")


def export_hf(model: InternVL, folder: str | pathlib.Path, tokenizer=None, *,
              dtype: str | None = "float32", max_shard_size: int | str = "5GB"
              ) -> pathlib.Path:
  """Writes `model` as a transformers-layout checkpoint: config.json, the weights in files of
  at most `max_shard_size` (`model.safetensors`, or `model-0000i-of-0000n.safetensors` with
  `model.safetensors.index.json` as transformers' `save_pretrained` writes them) and the
  tokenizer. Tensors stream one at a time (`iter_hf_tensors`); in a multi-host job every
  process calls it and process 0 writes.
  """
  folder = pathlib.Path(folder)
  writing = jax.process_index() == 0
  if writing:
    folder.mkdir(parents=True, exist_ok=True)
  writer = safetensors_io.ShardedWriter(folder, max_shard_size, write=writing)
  for key, tensor in iter_hf_tensors(model, dtype):
    writer.add(key, tensor)
  writer.close()
  if not writing:
    return folder
  with open(folder / "config.json", "w", encoding="utf-8") as f:
    json.dump(config_lib.to_hf_dict(model.config), f, indent=2)
  if tokenizer is not None:
    tokenizer.save_pretrained(str(folder))
  return folder
