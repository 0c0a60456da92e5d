"""`DrAction` (NNX) against the pure renderer and the released checkpoint."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from skel_llm.render import Buffer, DrAction, checkpoint, renderer

REF = "draction_reference"


def _grad_case(shared_data):
  ref = np.load(shared_data / REF / "grad_S001C003P008R002A058_01_96.npz")
  return ref, shared_data / REF / "draction_candidate_01.safetensors"


def test_from_released_matches_pure_render(shared_data):
  ref, path = _grad_case(shared_data)
  model = DrAction.from_released(path)
  weights = checkpoint.load_released(path)
  ours = model(ref["poses"], ref["vels"], image_size=48)
  pure = renderer.render(weights, ref["poses"], ref["vels"], image_size=48)
  np.testing.assert_array_equal(np.asarray(ours), np.asarray(pure))
  # The released appearance really is in the module: a fresh one draws something else.
  fresh = DrAction("ntu25", rngs=nnx.Rngs(1))(ref["poses"], ref["vels"], image_size=48)
  assert np.abs(np.asarray(fresh) - np.asarray(ours)).max() > 0.05


def test_batched_call_equals_per_clip(shared_data):
  ref, path = _grad_case(shared_data)
  model = DrAction.from_released(path)
  poses = np.stack([ref["poses"], ref["poses"][::-1]])
  vels = np.stack([ref["vels"], ref["vels"][::-1]])
  batch = np.asarray(model(poses, vels, image_size=32))
  assert batch.shape == (2, 4, 32, 32, 3)
  for b in range(2):
    np.testing.assert_allclose(batch[b], np.asarray(model(poses[b], vels[b], image_size=32)),
                               atol=1e-6)


def test_split_merge_gradients_reach_params_only(shared_data):
  ref, path = _grad_case(shared_data)
  model = DrAction.from_released(path)
  graphdef, params, buffers = nnx.split(model, nnx.Param, Buffer)
  n_params = sum(x.size for x in jax.tree.leaves(params))
  # 265*3 features + (3*64+64+64*4+4) appearance + (10*64+64+64*5+5) NFM + 1 depth mix.
  assert n_params == 795 + 516 + 1029 + 1

  @jax.jit
  def loss_fn(params, poses):
    frames = nnx.merge(graphdef, params, buffers)(poses, ref["vels"], image_size=32)
    return jnp.mean(frames**2)

  grads = jax.grad(loss_fn)(params, ref["poses"])
  leaves = jax.tree.leaves(grads)
  assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
  assert float(np.abs(np.asarray(grads["features"][...])).max()) > 0


def test_fresh_module_layout_and_round_trip(tmp_path):
  model = DrAction("ntu25", enable_nfm=False, rngs=nnx.Rngs(0))
  w = model.weights()
  assert w["params"]["features"].shape == (265, 3) and "nfm" not in w["params"]
  np.testing.assert_allclose(np.asarray(w["params"]["depth_mix_logit"]), -0.5)
  path = str(tmp_path / "mine.safetensors")
  checkpoint.export_released(w, path, param_dtype="float32")
  back = DrAction.from_released(path)
  chex_equal = jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                            back.weights(), w)
  del chex_equal


def test_gru_over_frames_matches_torch():
  """The optional GRU (disabled in the release) equals torch.nn.GRU with the same weights."""
  import torch

  from skel_llm.render import renderer

  model = DrAction("ntu25", enable_gru=True, rngs=nnx.Rngs(3))
  p = model.weights()["params"]["gru"]
  gru = torch.nn.GRU(10, 10)
  with torch.no_grad():
    gru.weight_ih_l0.copy_(torch.tensor(np.asarray(p["w_i"]).T))
    gru.weight_hh_l0.copy_(torch.tensor(np.asarray(p["w_h"]).T))
    gru.bias_ih_l0.copy_(torch.tensor(np.asarray(p["b_i"])))
    gru.bias_hh_l0.copy_(torch.tensor(np.asarray(p["b_h"])))
  xs = np.random.default_rng(0).normal(size=(6, 7, 10)).astype(np.float32)  # [n, Gaussians, 10]
  theirs, _ = gru(torch.from_numpy(xs))
  ours = renderer._gru(p, jnp.asarray(xs))
  np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), atol=1e-5)


def test_bf16_parameters_render_in_float32(shared_data):
  """Callers may hold bf16 parameters: the renderer upcasts them, exactly like the release."""
  ref, path = _grad_case(shared_data)
  weights = checkpoint.load_released(path)  # candidate 1 stores bf16: values are bf16-exact
  as_bf16 = {"params": jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), weights["params"]),
             "buffers": weights["buffers"]}
  a = renderer.render(weights, ref["poses"], ref["vels"], image_size=32)
  b = renderer.render(as_bf16, ref["poses"], ref["vels"], image_size=32)
  assert b.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
