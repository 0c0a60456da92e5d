"""InternVL3 hyper-parameters: vision, projector, text and LoRA sub-configs, presets.

Configs are frozen dataclasses (hashable, so they can be static arguments of `jax.jit`).
`from_hf_dict` / `to_hf_dict` translate to and from the transformers `InternVLConfig`
dictionary (`config.json` of a `*-hf` checkpoint); the original `InternVLChatModel`
layout is translated in `checkpoint.py`.

Preset numbers are those of the published `config.json` files of OpenGVLab/InternVL3-{1,2,8}B
(InternViT-300M-448px-V2_5 + Qwen2.5-{0.5,1.5,7}B, vocabulary 151,674, `<IMG_CONTEXT>` id 151,667).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

# Attention-like modules and MLP modules that LoRA can target, by short name.
# Rematerialisation policies of a transformer layer (see `layers.remat_layer`).
REMAT_NAMES = ("none", "full", "dots")
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
  """Low-rank adapters on the language model's linear layers.

  Attributes:
    rank: r, the inner dimension of the adapter.
    alpha: scale numerator; the adapter output is multiplied by alpha / rank.
    dropout: dropout rate on the adapter input (training only; needs a 'dropout' rng stream).
    targets: short names of the adapted linear layers (subset of `LORA_TARGETS`).
  """

  rank: int = 32
  alpha: float = 64.0
  dropout: float = 0.05
  targets: tuple[str, ...] = LORA_TARGETS

  def __post_init__(self):
    unknown = sorted(set(self.targets) - set(LORA_TARGETS))
    if unknown:
      raise ValueError(f"LoRAConfig.targets: unknown {unknown}; expected a subset of {LORA_TARGETS}")
    if self.rank <= 0:
      raise ValueError(f"LoRAConfig.rank must be positive, got {self.rank}")

  @property
  def scale(self) -> float:
    return self.alpha / self.rank


@dataclasses.dataclass(frozen=True)
class VisionConfig:
  """InternViT. `image_size` is the checkpoint's resolution (size of the position table)."""

  hidden_size: int = 1024
  num_layers: int = 24
  num_heads: int = 16
  intermediate_size: int = 4096
  image_size: int = 448
  patch_size: int = 14
  qkv_bias: bool = True
  qk_norm: bool = False  # InternViT-6B normalises q and k (RMSNorm over the full width).
  norm_type: str = "layer_norm"  # "layer_norm" (300M) or "rms_norm" (6B).
  norm_eps: float = 1e-6
  layer_scale_init: float = 0.1
  use_mean_pooling: bool = True  # transformers: False adds a final LayerNorm to the tower.
  hidden_act: str = "gelu"

  def __post_init__(self):
    if self.norm_type not in ("layer_norm", "rms_norm"):
      raise ValueError(f"VisionConfig.norm_type: expected layer_norm or rms_norm, got {self.norm_type}")
    if self.hidden_size % self.num_heads:
      raise ValueError(f"VisionConfig: hidden_size {self.hidden_size} not divisible by "
                       f"num_heads {self.num_heads}")

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_heads


@dataclasses.dataclass(frozen=True)
class TextConfig:
  """Qwen2.5 decoder."""

  vocab_size: int = 151674
  hidden_size: int = 896
  num_layers: int = 24
  num_heads: int = 14
  num_kv_heads: int = 2
  head_dim: int = 64
  intermediate_size: int = 4864
  rope_theta: float = 1_000_000.0
  rms_norm_eps: float = 1e-6
  tie_word_embeddings: bool = False
  max_position_embeddings: int = 32768
  hidden_act: str = "silu"

  def __post_init__(self):
    if self.num_heads % self.num_kv_heads:
      raise ValueError(f"TextConfig: num_heads {self.num_heads} not divisible by "
                       f"num_kv_heads {self.num_kv_heads}")


@dataclasses.dataclass(frozen=True)
class InternVLConfig:
  """The composed model.

  Attributes:
    vision: InternViT config (its `image_size` sizes the position table).
    text: Qwen2.5 config.
    image_size: resolution of the frames actually fed (position embeddings are interpolated
      bicubically when it differs from `vision.image_size`).
    downsample_ratio: pixel-shuffle factor (0.5: 2x2 patches -> one token of 4x the width).
    image_token_id: id of `<IMG_CONTEXT>`; each such position takes the next visual token.
    projector_hidden_act: activation between the projector's two linears.
    projector_norm_eps: epsilon of the projector's LayerNorm (torch default 1e-5).
    dtype: compute dtype ("float32" or "bfloat16").
    param_dtype: parameter dtype.
    remat: what each vision and decoder layer keeps for the backward pass
      (`layers.REMAT_POLICIES`): False / "none" everything, True / "full" only its input
      (recomputes the layer), "dots" also the outputs of its weight matmuls (recomputes
      attention, norms and activations).
    vision_remat: the vision tower's policy when it differs from `remat` (None: the same).
    scan_layers: stack each tower's layers (variables [num_layers, ...], paths without the
      layer index: `language_model/layers/self_attn/q_proj/kernel`) and run them with
      `jax.lax.scan`, so compile time and memory do not grow with depth.
    lora: adapters on the decoder, or None.
    visual_tokens_per_frame: K > 0 keeps only K visual tokens per image (foreground
      sparsification, `vision.select_cells`): each cell of (patch * 1/downsample_ratio)^2
      pixels, one visual token after the pixel shuffle, is scored by its summed intensity,
      the K highest are kept in raster order, and InternViT runs on their patches only;
      images with fewer than K foreground cells are padded and the padding is masked in
      InternViT's and the LLM's attention. Prompts carry K `<IMG_CONTEXT>` per image. 0: all
      cells (the dense path).
    foreground_threshold: a cell is foreground when its summed intensity (all channels and
      pixels) exceeds this (default: one 8-bit level of one channel of one pixel).
  """

  vision: VisionConfig = VisionConfig()
  text: TextConfig = TextConfig()
  image_size: int = 448
  downsample_ratio: float = 0.5
  image_token_id: int = 151667
  projector_hidden_act: str = "gelu"
  projector_norm_eps: float = 1e-5
  dtype: str = "float32"
  param_dtype: str = "float32"
  remat: bool | str = False
  vision_remat: bool | str | None = None
  scan_layers: bool = False
  lora: LoRAConfig | None = None
  visual_tokens_per_frame: int = 0
  foreground_threshold: float = 1 / 255

  def __post_init__(self):
    grid = self.image_size // self.patch_size
    if self.image_size % self.patch_size:
      raise ValueError(f"InternVLConfig.image_size {self.image_size} is not a multiple of "
                       f"patch_size {self.patch_size}")
    shuffle = round(1 / self.downsample_ratio)
    if abs(shuffle * self.downsample_ratio - 1) > 1e-9 or grid % shuffle:
      raise ValueError(f"InternVLConfig: patch grid {grid}x{grid} (image_size {self.image_size} / "
                       f"patch {self.patch_size}) is not divisible by 1/downsample_ratio "
                       f"= {1 / self.downsample_ratio}")
    cells = (grid // shuffle) ** 2
    if not 0 <= self.visual_tokens_per_frame <= cells:
      raise ValueError(f"InternVLConfig.visual_tokens_per_frame: expected 0 (all) to {cells} (the "
                       f"cells of a {self.image_size}^2 image), got {self.visual_tokens_per_frame}")
    for name in ("remat", "vision_remat"):
      value = getattr(self, name)
      if not (isinstance(value, bool) or value in REMAT_NAMES or (name == "vision_remat"
                                                                  and value is None)):
        raise ValueError(f"InternVLConfig.{name}: expected a bool or one of {REMAT_NAMES}, "
                         f"got {value!r}")
    for name in ("dtype", "param_dtype"):
      if getattr(self, name) not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"InternVLConfig.{name}: expected float32/bfloat16/float16, "
                         f"got {getattr(self, name)!r}")

  @property
  def patch_size(self) -> int:
    return self.vision.patch_size

  @property
  def shuffle_factor(self) -> int:
    return round(1 / self.downsample_ratio)

  @property
  def cells_per_image(self) -> int:
    """Cells (visual tokens of the dense path) per image: (image_size / patch_size *
    downsample_ratio) ** 2."""
    return (self.image_size // self.patch_size // self.shuffle_factor) ** 2

  @property
  def num_image_token(self) -> int:
    """Visual tokens per image fed to the LLM: `visual_tokens_per_frame` or every cell."""
    return self.visual_tokens_per_frame or self.cells_per_image

  @property
  def compute_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)

  @property
  def weight_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.param_dtype)

  def replace(self, **changes) -> InternVLConfig:
    return dataclasses.replace(self, **changes)


def tiny_config(image_size: int = 448, vocab_size: int | None = None,
                image_token_id: int | None = None, **changes) -> InternVLConfig:
  """A few-MB random-init model for the embedded default and tests (patch 14, 2+2 layers).

  Vocabulary size and `<IMG_CONTEXT>` id default to those of the committed tiny tokenizer.
  """
  if vocab_size is None or image_token_id is None:
    from skel_llm.models import tokenizer as tokenizer_lib  # Reads one small JSON file.
    vocab, img_id = tokenizer_lib.tiny_tokenizer_ids()
    vocab_size = vocab if vocab_size is None else vocab_size
    image_token_id = img_id if image_token_id is None else image_token_id
  vision = VisionConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
                        image_size=image_size, patch_size=14)
  text = TextConfig(vocab_size=vocab_size, hidden_size=64, num_layers=2, num_heads=4,
                    num_kv_heads=2, head_dim=16, intermediate_size=128, tie_word_embeddings=True,
                    max_position_embeddings=8192)
  return InternVLConfig(vision=vision, text=text, image_size=image_size,
                        image_token_id=image_token_id, **changes)


_INTERNVIT_300M = VisionConfig()


def internvl3_1b(**changes) -> InternVLConfig:
  """InternVL3-1B: InternViT-300M + Qwen2.5-0.5B."""
  text = TextConfig(hidden_size=896, num_layers=24, num_heads=14, num_kv_heads=2, head_dim=64,
                    intermediate_size=4864, tie_word_embeddings=False)
  return InternVLConfig(vision=_INTERNVIT_300M, text=text, **changes)


def internvl3_2b(**changes) -> InternVLConfig:
  """InternVL3-2B: InternViT-300M + Qwen2.5-1.5B."""
  text = TextConfig(hidden_size=1536, num_layers=28, num_heads=12, num_kv_heads=2, head_dim=128,
                    intermediate_size=8960, tie_word_embeddings=False)
  return InternVLConfig(vision=_INTERNVIT_300M, text=text, **changes)


def internvl3_8b(**changes) -> InternVLConfig:
  """InternVL3-8B: InternViT-300M + Qwen2.5-7B (the SkeletonLLM paper's model)."""
  text = TextConfig(hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4, head_dim=128,
                    intermediate_size=18944, tie_word_embeddings=False)
  return InternVLConfig(vision=_INTERNVIT_300M, text=text, **changes)


def _pair(value: Any, field: str) -> int:
  """transformers stores sizes as int or [h, w]; only square ones are supported."""
  if isinstance(value, (list, tuple)):
    if len(value) != 2 or value[0] != value[1]:
      raise ValueError(f"config.json {field}: only square sizes are supported, got {value}")
    return int(value[0])
  return int(value)


def from_hf_dict(hf: dict[str, Any], **changes) -> InternVLConfig:
  """`InternVLConfig` from a transformers InternVL `config.json` dictionary."""
  if hf.get("model_type") != "internvl":
    raise ValueError(f"config.json model_type: expected 'internvl', got {hf.get('model_type')!r}")
  v, t = hf["vision_config"], hf["text_config"]
  layer = hf.get("vision_feature_layer", -1)
  if layer != -1 or hf.get("vision_feature_select_strategy", "default") != "default":
    raise ValueError(f"config.json: only vision_feature_layer=-1 and select strategy 'default' "
                     f"are supported, got {layer} / {hf.get('vision_feature_select_strategy')}")
  image_size = _pair(v.get("image_size", 448), "vision_config.image_size")
  vision = VisionConfig(
      hidden_size=v["hidden_size"], num_layers=v["num_hidden_layers"],
      num_heads=v["num_attention_heads"], intermediate_size=v["intermediate_size"],
      image_size=image_size, patch_size=_pair(v.get("patch_size", 14), "vision_config.patch_size"),
      qkv_bias=v.get("attention_bias", False), qk_norm=v.get("use_qk_norm", False),
      norm_type=v.get("norm_type", "layer_norm"), norm_eps=v.get("layer_norm_eps", 1e-6),
      layer_scale_init=v.get("layer_scale_init_value", 0.1),
      use_mean_pooling=v.get("use_mean_pooling", True), hidden_act=v.get("hidden_act", "gelu"))
  text = text_from_hf_dict(t, tie=hf.get("tie_word_embeddings", t.get("tie_word_embeddings")))
  kwargs = dict(vision=vision, text=text, image_size=image_size,
                downsample_ratio=hf.get("downsample_ratio", 0.5),
                image_token_id=hf.get("image_token_id", 151667),
                projector_hidden_act=hf.get("projector_hidden_act", "gelu"))
  kwargs.update(changes)
  return InternVLConfig(**kwargs)


def text_from_hf_dict(t: dict[str, Any], tie: bool | None = None) -> TextConfig:
  """`TextConfig` from a Qwen2 config dictionary (`text_config` or the original `llm_config`)."""
  theta = t.get("rope_theta")
  if theta is None:
    theta = (t.get("rope_parameters") or {}).get("rope_theta", 1_000_000.0)
  rope_type = (t.get("rope_parameters") or t.get("rope_scaling") or {}).get("rope_type", "default")
  if rope_type != "default":
    raise ValueError(f"text config: only default rotary embeddings are supported, got {rope_type!r}")
  if t.get("use_sliding_window", False):
    raise ValueError("text config: sliding-window attention is not supported (use_sliding_window)")
  heads = t["num_attention_heads"]
  return TextConfig(
      vocab_size=t["vocab_size"], hidden_size=t["hidden_size"], num_layers=t["num_hidden_layers"],
      num_heads=heads, num_kv_heads=t.get("num_key_value_heads", heads),
      head_dim=t.get("head_dim") or t["hidden_size"] // heads,
      intermediate_size=t["intermediate_size"], rope_theta=float(theta),
      rms_norm_eps=t.get("rms_norm_eps", 1e-6),
      tie_word_embeddings=bool(t.get("tie_word_embeddings", False) if tie is None else tie),
      max_position_embeddings=t.get("max_position_embeddings", 32768),
      hidden_act=t.get("hidden_act", "silu"))


def to_hf_dict(config: InternVLConfig) -> dict[str, Any]:
  """transformers InternVL `config.json` dictionary for `config`."""
  v, t = config.vision, config.text
  return {
      "model_type": "internvl",
      "architectures": ["InternVLForConditionalGeneration"],
      "vision_config": {
          "model_type": "internvl_vision", "hidden_size": v.hidden_size,
          "num_hidden_layers": v.num_layers, "num_attention_heads": v.num_heads,
          "intermediate_size": v.intermediate_size, "image_size": [v.image_size] * 2,
          "patch_size": [v.patch_size] * 2, "attention_bias": v.qkv_bias,
          "use_qk_norm": v.qk_norm, "norm_type": v.norm_type, "layer_norm_eps": v.norm_eps,
          "layer_scale_init_value": v.layer_scale_init, "use_mean_pooling": v.use_mean_pooling,
          "hidden_act": v.hidden_act},
      "text_config": {
          "model_type": "qwen2", "vocab_size": t.vocab_size, "hidden_size": t.hidden_size,
          "num_hidden_layers": t.num_layers, "num_attention_heads": t.num_heads,
          "num_key_value_heads": t.num_kv_heads, "head_dim": t.head_dim,
          "intermediate_size": t.intermediate_size,
          "rope_parameters": {"rope_type": "default", "rope_theta": t.rope_theta},
          "rms_norm_eps": t.rms_norm_eps, "tie_word_embeddings": t.tie_word_embeddings,
          "max_position_embeddings": t.max_position_embeddings, "hidden_act": t.hidden_act},
      "downsample_ratio": config.downsample_ratio,
      "image_token_id": config.image_token_id,
      "image_seq_length": config.cells_per_image,
      "projector_hidden_act": config.projector_hidden_act,
      "vision_feature_layer": -1,
      "vision_feature_select_strategy": "default",
      "tie_word_embeddings": t.tie_word_embeddings,
  }
