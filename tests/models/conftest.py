"""Tiny random transformers InternVL models, saved in both checkpoint layouts, for parity tests.

Two configurations differ in every option the port has:
  "a": 448 px / patch 14 (1024 patches -> 256 tokens), LayerNorm, qkv bias, untied embeddings.
  "b": checkpoint 64 px / patch 8, run at 96 px (position embeddings interpolated), InternViT-6B
       options (qk RMSNorm, RMSNorm blocks), no qkv bias, tied embeddings, rope theta 1e6.
Weights are perturbed away from transformers' structured init (zero class/position embeddings,
constant layer scale, unit norms), so every tensor matters.
"""

import json
import pathlib
import re
import shutil

import numpy as np
import pytest

from safetensors.numpy import load_file, save_file
from skel_llm.models.tokenizer import TINY_TOKENIZER_DIR, tiny_tokenizer_ids

VOCAB, IMG_ID = tiny_tokenizer_ids()

CONFIGS = {
    "a": dict(
        vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, image_size=448, patch_size=14,
                           attention_bias=True),
        text_config=dict(model_type="qwen2", vocab_size=VOCAB, hidden_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         intermediate_size=96, tie_word_embeddings=False),
        tie_word_embeddings=False, run_size=448),
    "b": dict(
        vision_config=dict(hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
                           intermediate_size=80, image_size=64, patch_size=8,
                           attention_bias=False, use_qk_norm=True, norm_type="rms_norm",
                           layer_norm_eps=1e-5),
        text_config=dict(model_type="qwen2", vocab_size=VOCAB, hidden_size=48,
                         num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
                         head_dim=12, intermediate_size=80, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
        tie_word_embeddings=True, run_size=96),
}


def build_hf(kind: str, seed: int = 0):
  """(transformers InternVLForConditionalGeneration in eval mode, run resolution)."""
  import torch
  from transformers import InternVLConfig, InternVLForConditionalGeneration
  spec = dict(CONFIGS[kind])
  run_size = spec.pop("run_size")
  cfg = InternVLConfig(image_token_id=IMG_ID, **spec)
  torch.manual_seed(seed)
  model = InternVLForConditionalGeneration(cfg).eval()
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.05 * torch.randn_like(p))
  return model, run_size


def _copy_tokenizer(folder: pathlib.Path) -> None:
  for f in TINY_TOKENIZER_DIR.iterdir():
    shutil.copy(f, folder / f.name)


# Inverse of the original -> transformers renaming (the layout transformers' conversion script
# reads); written independently of skel_llm.models.checkpoint's table.
_TO_ORIGINAL = (
    (r"vision_tower\.embeddings\.cls_token", "vision_model.embeddings.class_embedding"),
    (r"vision_tower\.embeddings\.position_embeddings",
     "vision_model.embeddings.position_embedding"),
    (r"vision_tower\.embeddings\.patch_embeddings\.projection\.(.*)",
     r"vision_model.embeddings.patch_embedding.\1"),
    (r"vision_tower\.encoder\.layer\.(\d+)\.attention\.projection_layer\.(.*)",
     r"vision_model.encoder.layers.\1.attn.proj.\2"),
    (r"vision_tower\.encoder\.layer\.(\d+)\.attention\.(q_norm|k_norm)\.(.*)",
     r"vision_model.encoder.layers.\1.attn.\2.\3"),
    (r"vision_tower\.encoder\.layer\.(\d+)\.mlp\.(.*)", r"vision_model.encoder.layers.\1.mlp.\2"),
    (r"vision_tower\.encoder\.layer\.(\d+)\.layernorm_before\.(.*)",
     r"vision_model.encoder.layers.\1.norm1.\2"),
    (r"vision_tower\.encoder\.layer\.(\d+)\.layernorm_after\.(.*)",
     r"vision_model.encoder.layers.\1.norm2.\2"),
    (r"vision_tower\.encoder\.layer\.(\d+)\.lambda_1", r"vision_model.encoder.layers.\1.ls1"),
    (r"vision_tower\.encoder\.layer\.(\d+)\.lambda_2", r"vision_model.encoder.layers.\1.ls2"),
    (r"multi_modal_projector\.layer_norm\.(.*)", r"mlp1.0.\1"),
    (r"multi_modal_projector\.linear_1\.(.*)", r"mlp1.1.\1"),
    (r"multi_modal_projector\.linear_2\.(.*)", r"mlp1.3.\1"),
    (r"language_model\.(.*)", r"language_model.\1"),
)


def write_original_layout(hf_folder: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
  """Rewrites a transformers-layout folder as an original InternVLChatModel checkpoint."""
  out.mkdir(parents=True, exist_ok=True)
  cfg = json.loads((hf_folder / "config.json").read_text())
  tensors = load_file(hf_folder / "model.safetensors")
  result = {}
  for i in range(cfg["vision_config"]["num_hidden_layers"]):
    pre = f"vision_tower.encoder.layer.{i}.attention."
    for kind in ("weight", "bias"):
      parts = [tensors.pop(f"{pre}{n}_proj.{kind}", None) for n in "qkv"]
      if parts[0] is not None:
        result[f"vision_model.encoder.layers.{i}.attn.qkv.{kind}"] = np.concatenate(parts, 0)
  for key, x in tensors.items():
    for pattern, target in _TO_ORIGINAL:
      m = re.fullmatch(pattern, key)
      if m:
        result[m.expand(target)] = x
        break
    else:
      raise AssertionError(f"no original-layout name for {key}")
  # Two shards, like real releases, to exercise multi-file streaming.
  names = sorted(result)
  half = len(names) // 2
  save_file({k: result[k] for k in names[:half]}, str(out / "model-00001-of-00002.safetensors"))
  save_file({k: result[k] for k in names[half:]}, str(out / "model-00002-of-00002.safetensors"))
  v, t = cfg["vision_config"], cfg["text_config"]
  original = {
      "architectures": ["InternVLChatModel"], "model_type": "internvl_chat",
      "downsample_ratio": cfg["downsample_ratio"], "force_image_size": v["image_size"][0],
      "select_layer": -1, "ps_version": "v2", "template": "internvl2_5",
      "vision_config": {
          "architectures": ["InternVisionModel"], "model_type": "intern_vit_6b",
          "hidden_size": v["hidden_size"], "num_hidden_layers": v["num_hidden_layers"],
          "num_attention_heads": v["num_attention_heads"],
          "intermediate_size": v["intermediate_size"], "image_size": v["image_size"][0],
          "patch_size": v["patch_size"][0], "qkv_bias": v["attention_bias"],
          "qk_normalization": v["use_qk_norm"], "norm_type": v["norm_type"],
          "layer_norm_eps": v["layer_norm_eps"], "initializer_factor": 0.1,
          "hidden_act": "gelu", "use_flash_attn": False},
      "llm_config": dict(t, architectures=["Qwen2ForCausalLM"],
                         tie_word_embeddings=cfg["tie_word_embeddings"]),
  }
  (out / "config.json").write_text(json.dumps(original, indent=2))
  _copy_tokenizer(out)
  return out


@pytest.fixture(scope="session")
def hf_checkpoints(tmp_path_factory):
  """kind -> dict(model=torch model, run_size, hf=folder, original=folder), built on demand."""
  cache = {}

  def get(kind: str):
    if kind not in cache:
      model, run_size = build_hf(kind)
      root = tmp_path_factory.mktemp(f"internvl_{kind}")
      hf_folder = root / "hf"
      model.save_pretrained(str(hf_folder))
      _copy_tokenizer(hf_folder)
      cache[kind] = dict(model=model, run_size=run_size, hf=hf_folder,
                         original=write_original_layout(hf_folder, root / "original"))
    return cache[kind]

  return get


@pytest.fixture(autouse=True)
def _highest_precision():
  """float32 matmuls at full precision, for this package's tests only."""
  import jax
  with jax.default_matmul_precision("highest"):
    yield
