"""Pins skel_llm/models/{internvl,vision,qwen2,layers,config}.py: per-module parity with
transformers, the visual-token merge, LoRA, dtypes, remat, logical axes and full-size shapes."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skel_llm import models
from skel_llm.models import config as config_lib
from skel_llm.models import internvl, qwen2, vision

LOGICAL_AXES = {"vocab", "embed", "heads", "kv_heads", "mlp", "vision_patch", "vision_pos",
                "vision_embed", "vision_heads", "vision_mlp", "projector_in", "projector_hidden",
                "lora_rank", None}


def _t(x):
  import torch
  return torch.from_numpy(np.asarray(x))


_apply = jax.jit(lambda state, ids, px, graphdef: nnx.merge(graphdef, state)(ids, None, px),
                 static_argnums=3)


def fwd(model, ids, px):
  """Jitted logits (one compilation per configuration instead of op-by-op dispatch)."""
  graphdef, state = nnx.split(model)
  return np.asarray(_apply(state, jnp.asarray(ids), jnp.asarray(px), graphdef))


def test_modules_match_transformers(hf_checkpoints):
  """Embeddings (interpolated), one InternViT-6B-style layer, pixel shuffle, projector, rotary
  tables and the Qwen2 stack, each fed the same input, to 1e-5."""
  import torch
  ref = hf_checkpoints("b")
  hf = ref["model"].model
  model, _, config = models.load_pretrained(ref["hf"], image_size=96)
  rng = np.random.default_rng(0)
  px = rng.uniform(0, 1, (2, 3, 96, 96)).astype(np.float32)
  x_vis = rng.normal(size=(2, 145, 48)).astype(np.float32)
  grid = rng.normal(size=(2, 12, 12, 48)).astype(np.float32)
  feats = rng.normal(size=(2, 36, 192)).astype(np.float32)
  x_txt = rng.normal(size=(2, 7, 48)).astype(np.float32)
  mask = np.array([[1] * 7, [1] * 5 + [0] * 2])
  with torch.no_grad():
    want_emb = hf.vision_tower.embeddings(_t(px)).numpy()
    want_layer = hf.vision_tower.encoder.layer[1](_t(x_vis)).numpy()
    want_shuffle = hf.pixel_shuffle(_t(grid), 0.5).numpy()
    want_proj = hf.multi_modal_projector(_t(feats)).numpy()
    pos = torch.arange(7)[None].expand(2, 7)
    want_cos, want_sin = hf.language_model.rotary_emb(_t(x_txt), pos)
    want_txt = hf.language_model(inputs_embeds=_t(x_txt), attention_mask=_t(mask)
                                 ).last_hidden_state.numpy()
  tol = dict(atol=1e-5, rtol=0)
  np.testing.assert_allclose(model.vision_tower.embed(jnp.asarray(px)), want_emb, **tol)
  np.testing.assert_allclose(model.vision_tower.layers[1](jnp.asarray(x_vis)), want_layer, **tol)
  np.testing.assert_array_equal(vision.pixel_shuffle(jnp.asarray(grid), 2), want_shuffle)
  np.testing.assert_allclose(model.multi_modal_projector(jnp.asarray(feats)), want_proj, **tol)
  cos, sin = qwen2.rope_tables(jnp.asarray(pos.numpy()), 12, 1e6)
  np.testing.assert_allclose(cos, want_cos.numpy(), atol=1e-6, rtol=0)
  np.testing.assert_allclose(sin, want_sin.numpy(), atol=1e-6, rtol=0)
  got_txt, _ = model.language_model(jnp.asarray(x_txt), jnp.asarray(pos.numpy()),
                                    internvl.causal_mask(jnp.asarray(mask)))
  real = mask.astype(bool)
  np.testing.assert_allclose(np.asarray(got_txt)[real], want_txt[real], **tol)


def test_final_vision_layernorm_option(tmp_path):
  """use_mean_pooling=False (a final LayerNorm on the tower) matches transformers."""
  import torch
  from transformers import InternVLVisionConfig, InternVLVisionModel
  cfg = InternVLVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=48, image_size=56, patch_size=14,
                             use_mean_pooling=False)
  torch.manual_seed(0)
  hf = InternVLVisionModel(cfg).eval()
  with torch.no_grad():
    for p in hf.parameters():
      p.add_(0.05 * torch.randn_like(p))
  ours_cfg = models.tiny_config(image_size=56).replace(
      vision=config_lib.VisionConfig(hidden_size=32, num_layers=2, num_heads=4,
                                     intermediate_size=48, image_size=56, patch_size=14,
                                     use_mean_pooling=False))
  tower = vision.VisionTower(ours_cfg, nnx.Rngs(0))
  from skel_llm.models import checkpoint
  for key, x in hf.state_dict().items():
    path, kind = checkpoint.hf_to_flax_key("vision_tower." + key)
    node = tower
    parts = path.split("/")[1:]
    for part in parts[:-1]:
      node = node[int(part)] if part.isdigit() else getattr(node, part)
    var = getattr(node, parts[-1])
    var[...] = jnp.asarray(checkpoint._transform(kind, x.numpy()))
  px = np.random.default_rng(0).uniform(0, 1, (2, 3, 56, 56)).astype(np.float32)
  with torch.no_grad():
    want = hf(pixel_values=_t(px)).last_hidden_state.numpy()
  np.testing.assert_allclose(tower(jnp.asarray(px)), want, atol=1e-5, rtol=0)


def test_bicubic_matrix_matches_torch():
  import torch
  x = np.random.default_rng(0).normal(size=(1, 1, 7, 7)).astype(np.float64)
  for size in (4, 7, 12, 32):
    want = torch.nn.functional.interpolate(_t(x), size=(size, size), mode="bicubic",
                                           align_corners=False).numpy()[0, 0]
    m = vision.bicubic_matrix(7, size)
    np.testing.assert_allclose(m @ x[0, 0] @ m.T, want, atol=1e-12, rtol=0)


@pytest.fixture(scope="module")
def tiny():
  config = models.tiny_config(image_size=56)
  return models.InternVL(config, rngs=nnx.Rngs(0)), config


def _frames_batch(config, rng, frames=2):
  t = config.num_image_token
  rows = []
  for b in range(2):
    row = list(rng.integers(10, 200, 3 + b))
    for _ in range(frames):
      row += [3] + [config.image_token_id] * t + [4]
    rows.append(row + list(rng.integers(10, 200, 4 - b)))
  px = rng.uniform(0, 1, (2, frames, 3, 56, 56)).astype(np.float32)
  return np.asarray(rows, np.int32), px


def test_per_sample_frames_equal_flat_images(tiny):
  model, config = tiny
  ids, px = _frames_batch(config, np.random.default_rng(0))
  per_sample = fwd(model, ids, px)
  flat = fwd(model, ids, px.reshape(4, 3, 56, 56))
  np.testing.assert_array_equal(per_sample, flat)
  # Each row's placeholders take its own frames: reordering sample 1's frames changes only
  # row 1, and only from its first image on (causal attention).
  px_swapped = px.copy()
  px_swapped[1] = px[1, ::-1]
  swapped = np.asarray(fwd(model, ids, px_swapped))
  np.testing.assert_array_equal(swapped[0], per_sample[0])
  np.testing.assert_array_equal(swapped[1, :4], per_sample[1, :4])
  assert np.abs(swapped[1, 5:] - np.asarray(per_sample[1, 5:])).min() > 0
  bad = ids.copy()
  bad[1, 5] = 50
  with pytest.raises(ValueError, match=r"each row needs 8 <IMG_CONTEXT> tokens"):
    model(jnp.asarray(bad), None, jnp.asarray(px))
  with pytest.raises(ValueError, match=r"15 <IMG_CONTEXT> tokens for 4 images x 4"):
    model(jnp.asarray(bad), None, jnp.asarray(px.reshape(4, 3, 56, 56)))


def test_lora_merged_equals_unmerged(tiny):
  _, config = tiny
  lora = models.LoRAConfig(rank=4, alpha=8.0, dropout=0.05, targets=("q", "v", "o", "gate",
                                                                     "down"))
  model = models.InternVL(config.replace(lora=lora), rngs=nnx.Rngs(1))
  lora_state = nnx.state(model, nnx.LoRAParam)
  paths = ["/".join(map(str, p)) for p, _ in nnx.to_flat_state(lora_state)]
  assert len(paths) == 2 * 5 * config.text.num_layers
  assert all("lora_a" in p or "lora_b" in p for p in paths)
  assert not any("k_proj" in p or "up_proj" in p or "vision" in p for p in paths)
  ids, px = _frames_batch(config, np.random.default_rng(1))
  base = fwd(model, ids, px)
  # Train-like adapters: B away from its zero init.
  for path, var in nnx.to_flat_state(lora_state):
    if path[-1] == "lora_b":
      var[...] = 0.1 * jax.random.normal(jax.random.key(len(path)), var[...].shape)
  nnx.update(model, lora_state)
  adapted = fwd(model, ids, px)
  assert np.abs(np.asarray(adapted) - np.asarray(base)).max() > 1e-2
  # Dropout acts in training mode only (masks from the module's RNG streams, new each call).
  model.train()
  train_fwd = nnx.jit(lambda m, i, x: m(i, None, x))  # Carries the RNG counts forward.
  drop_a, drop_b = (np.asarray(train_fwd(model, jnp.asarray(ids), jnp.asarray(px)))
                    for _ in "ab")
  model.eval()
  assert not np.allclose(drop_a, drop_b) and not np.allclose(drop_a, adapted)
  np.testing.assert_array_equal(fwd(model, ids, px), adapted)
  models.merge_lora(model)
  merged = fwd(model, ids, px)
  np.testing.assert_allclose(merged, adapted, atol=1e-5, rtol=0)


def test_bfloat16_and_remat(tiny):
  model, config = tiny
  ids, px = _frames_batch(config, np.random.default_rng(2))
  bf = models.InternVL(config.replace(dtype="bfloat16", param_dtype="bfloat16"),
                       rngs=nnx.Rngs(0))
  assert {v.dtype for v in jax.tree.leaves(nnx.state(bf, nnx.Param))} == {jnp.dtype(jnp.bfloat16)}
  nnx.update(bf, jax.tree.map(lambda x: x.astype(jnp.bfloat16), nnx.state(model, nnx.Param)))
  want = np.asarray(fwd(model, ids, px))
  got = np.asarray(fwd(bf, ids, px))
  assert got.dtype == np.float32
  # bf16 keeps ~3 significant digits: errors are a small fraction of the logit spread.
  assert np.abs(got - want).max() < 0.05 * want.std() + 1e-3

  def loss(params, graphdef, rest):
    m = nnx.merge(graphdef, params, rest)
    return jnp.mean(jax.nn.logsumexp(m(jnp.asarray(ids), None, jnp.asarray(px)), -1))

  grads = []
  for remat in (False, True):
    m = models.InternVL(config.replace(remat=remat), rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(m, nnx.Param, ...)
    grads.append(jax.jit(jax.grad(loss), static_argnums=1)(params, graphdef, rest))
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-5)


def test_every_parameter_has_logical_axes(tiny):
  model, _ = tiny
  lora_model = models.InternVL(tiny[1].replace(lora=models.LoRAConfig()), rngs=nnx.Rngs(0))
  for m in (model, lora_model):
    for path, var in nnx.to_flat_state(nnx.state(m, nnx.Param)):
      axes = var.get_metadata()["out_sharding"]
      assert len(axes) == var[...].ndim, path
      assert set(axes) <= LOGICAL_AXES, (path, axes)
    specs = nnx.get_partition_spec(nnx.state(m, nnx.Param))
    assert all(len(s) for s in jax.tree.leaves(specs, is_leaf=lambda x: isinstance(
        x, jax.sharding.PartitionSpec)))


@pytest.mark.parametrize("preset", ["internvl3_1b", "internvl3_2b", "internvl3_8b"])
def test_full_size_parameter_count_equals_transformers(preset):
  import torch
  from transformers import InternVLConfig, InternVLForConditionalGeneration
  config = getattr(models, preset)()
  abstract = nnx.eval_shape(lambda: models.InternVL(config, rngs=nnx.Rngs(0)))
  ours = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
  with torch.device("meta"):
    hf = InternVLForConditionalGeneration(InternVLConfig(**config_lib.to_hf_dict(config)))
  theirs = sum(p.numel() for p in hf.parameters())
  assert ours == theirs
  assert config.num_image_token == 256


def test_config_validation():
  with pytest.raises(ValueError, match="not a multiple of patch_size 14"):
    models.tiny_config(image_size=100)
  with pytest.raises(ValueError, match="not divisible by 1/downsample_ratio"):
    models.tiny_config(image_size=42)
  with pytest.raises(ValueError, match="unknown"):
    models.LoRAConfig(targets=("q", "qkv"))
  c = models.internvl3_8b(image_size=224)
  assert c.num_image_token == 64 and dataclasses.replace(c, image_size=448).num_image_token == 256
