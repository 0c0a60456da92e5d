"""Pins the scanned layer layout (`InternVLConfig.scan_layers`, `layers.stack_layers` /
`scan_layers`, the converter's stacked paths): same numbers as transformers and as the
unrolled layers, every checkpoint key accounted for, export identical."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

from skel_llm import models
from skel_llm.models import checkpoint

from .test_checkpoint import _jit_apply, _prompt_batch


@pytest.mark.parametrize("kind,layout", [("a", "hf"), ("b", "original")])
def test_scanned_model_matches_transformers(hf_checkpoints, kind, layout):
  import torch
  ref = hf_checkpoints(kind)
  model, tok, config = models.load_pretrained(ref[layout], image_size=ref["run_size"],
                                              scan_layers=True)
  assert config.scan_layers
  # Stacked: one module per tower whose variables lead with the layer axis.
  kernel = model.language_model.layers.self_attn.q_proj.kernel
  assert kernel.shape[0] == config.text.num_layers
  assert kernel.get_metadata()["out_sharding"][0] == "layers"
  ids, mask = _prompt_batch(tok, config, [1, 2])
  px = np.random.default_rng(0).uniform(0, 1, (3, 3, ref["run_size"], ref["run_size"])
                                        ).astype(np.float32)
  with torch.no_grad():
    want = ref["model"](input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        pixel_values=torch.from_numpy(px)).logits.numpy()
  got = _jit_apply(model, "__call__", jnp.asarray(ids, jnp.int32), jnp.asarray(mask),
                   jnp.asarray(px))
  real = mask.astype(bool)
  np.testing.assert_allclose(got[real], want[real], atol=1e-4, rtol=0)


def test_stacked_init_is_the_unrolled_init_stacked():
  config = models.tiny_config(image_size=56, lora=models.LoRAConfig(rank=4, dropout=0.1))
  flat = nnx.to_pure_dict(nnx.state(models.InternVL(config, rngs=nnx.Rngs(3)), nnx.Param))
  stacked = nnx.to_pure_dict(nnx.state(
      models.InternVL(config.replace(scan_layers=True), rngs=nnx.Rngs(3)), nnx.Param))
  for tower, n in (("language_model", config.text.num_layers),
                   ("vision_tower", config.vision.num_layers)):
    layers = [flat[tower]["layers"][i] for i in range(n)]
    want = jax.tree.map(lambda *xs: np.stack(xs), *layers)
    jax.tree.map(np.testing.assert_array_equal, stacked[tower]["layers"], want)
    rest = {k: v for k, v in flat[tower].items() if k != "layers"}
    jax.tree.map(np.testing.assert_array_equal,
                 {k: v for k, v in stacked[tower].items() if k != "layers"}, rest)


@pytest.mark.parametrize("remat", ["none", "full", "dots"])
def test_scanned_gradients_equal_unrolled(remat):
  config = models.tiny_config(image_size=56, remat=remat,
                              lora=models.LoRAConfig(rank=4, dropout=0.0))
  t = config.num_image_token
  ids = jnp.asarray([[20, 21] + [config.image_token_id] * t + [22, 23, 24]], jnp.int32)
  px = jax.random.uniform(jax.random.key(1), (1, 3, 56, 56))

  def grads(cfg):
    graphdef, params, rest = nnx.split(models.InternVL(cfg, rngs=nnx.Rngs(0)), nnx.Param, ...)

    def loss(p):
      return jnp.sum(jnp.square(nnx.merge(graphdef, p, rest)(ids, None, px)[:, -3:]))
    return jax.jit(jax.value_and_grad(loss))(params)

  (l0, g0), (l1, g1) = grads(config), grads(config.replace(scan_layers=True))

  scale = max(float(np.abs(x).max()) for x in jax.tree.leaves(g0))

  def close(a, b):
    # float32 reassociation (XLA fuses the scanned body differently): 1e-5 of the largest
    # gradient, the 1e-5 of the model-level parity tests.
    np.testing.assert_allclose(a, b, atol=1e-5 * scale, rtol=0)
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  g0, g1 = nnx.to_pure_dict(g0), nnx.to_pure_dict(g1)
  for tower, n in (("language_model", config.text.num_layers),
                   ("vision_tower", config.vision.num_layers)):
    want = jax.tree.map(lambda *xs: np.stack(xs), *[g0[tower]["layers"][i] for i in range(n)])
    jax.tree.map(close, g1[tower]["layers"], want)
  close(g1["multi_modal_projector"]["linear_1"]["kernel"],
        g0["multi_modal_projector"]["linear_1"]["kernel"])


def test_scanned_export_equals_unrolled_export(hf_checkpoints, tmp_path):
  ref = hf_checkpoints("b")
  lora = models.LoRAConfig(rank=4, dropout=0.0)
  flat, tok, _ = models.load_pretrained(ref["hf"], lora=lora)
  scanned, _, _ = models.load_pretrained(ref["hf"], lora=lora, scan_layers=True)
  # Give both the same non-zero adapters so the export folds something in.
  for i in range(flat.config.text.num_layers):
    b = jax.random.normal(jax.random.key(i), flat.language_model.layers[i].mlp.up_proj.lora_b.shape)
    flat.language_model.layers[i].mlp.up_proj.lora_b[...] = b
    scanned.language_model.layers.mlp.up_proj.lora_b[...] = (
        scanned.language_model.layers.mlp.up_proj.lora_b[...].at[i].set(b))
    flat.language_model.layers[i].mlp.up_proj.lora_a[...] = (
        scanned.language_model.layers.mlp.up_proj.lora_a[...][i])
  a = models.export_hf(flat, tmp_path / "flat", tokenizer=tok)
  b = models.export_hf(scanned, tmp_path / "scanned", tokenizer=tok)
  ta = load_file(a / "model.safetensors")
  tb = load_file(b / "model.safetensors")
  assert sorted(ta) == sorted(tb)
  for k in ta:
    np.testing.assert_array_equal(tb[k], ta[k], err_msg=k)
  # The stacked export loads back (every key mapped, every target filled).
  models.load_pretrained(b, scan_layers=True)


def test_missing_layer_of_a_stack_is_named(hf_checkpoints, tmp_path):
  import shutil
  folder = tmp_path / "ckpt"
  shutil.copytree(hf_checkpoints("a")["hf"], folder)
  removed = []
  for path in sorted(folder.glob("*.safetensors")):
    tensors = load_file(path)
    keys = [k for k in tensors if k.endswith(".layers.1.mlp.up_proj.weight")]
    for k in keys:
      removed.append(tensors.pop(k))
    save_file(tensors, str(path))
  assert len(removed) == 1
  with pytest.raises(ValueError, match=r"missing target: language_model/layers/mlp/up_proj/"
                                       r"kernel layer 1"):
    models.load_pretrained(folder, scan_layers=True)


def test_scanned_cached_generation_equals_unrolled(hf_checkpoints):
  ref = hf_checkpoints("a")
  flat, _, config = models.load_pretrained(ref["hf"], image_size=ref["run_size"])
  scanned, _, _ = models.load_pretrained(ref["hf"], image_size=ref["run_size"],
                                         scan_layers=True)
  t = config.num_image_token
  ids = np.asarray([[11, 12, 3] + [config.image_token_id] * t + [4, 13, 14]], np.int32)
  px = np.random.default_rng(2).uniform(0, 1, (1, 3, ref["run_size"], ref["run_size"])
                                        ).astype(np.float32)
  want = np.asarray(models.generate(flat, ids, None, px, max_new_tokens=8))
  got = np.asarray(models.generate(scanned, ids, None, px, max_new_tokens=8))
  np.testing.assert_array_equal(got, want)


def test_sharded_scanned_load_keeps_layer_axis_whole(hf_checkpoints):
  from jax.sharding import NamedSharding, PartitionSpec
  if jax.device_count() < 8:
    pytest.skip("needs 8 (simulated) devices")
  mesh = jax.make_mesh((8,), ("model",), axis_types=(jax.sharding.AxisType.Auto,))

  def shardings(path, var):
    axes = var.get_metadata()["out_sharding"]
    spec = [("model" if a == "embed" and n % 8 == 0 else None) for a, n in zip(axes, var.shape)]
    return NamedSharding(mesh, PartitionSpec(*spec))

  ref = hf_checkpoints("b")
  plain, _, _ = models.load_pretrained(ref["hf"])
  sharded, _, _ = models.load_pretrained(ref["hf"], shardings=shardings, scan_layers=True)
  k = sharded.language_model.layers.mlp.up_proj.kernel[...]
  assert k.sharding.spec == PartitionSpec(None, "model", None)
  assert checkpoint.stacked_path("language_model/layers/3/mlp/up_proj/kernel") == (
      "language_model/layers/mlp/up_proj/kernel", 3)
  ids = jnp.asarray([[5, 7, 9, 11, 13]])
  np.testing.assert_allclose(sharded(ids), plain(ids), atol=1e-5, rtol=0)
