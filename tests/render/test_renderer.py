"""Parity of `skel_llm.render.renderer` with the authors' reference renders and gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skel_llm.render import checkpoint, renderer

REF = "draction_reference"
# Reference file -> checkpoint candidate, from manifest.json.
SMALL = ["S001C001P001R001A005_03_224", "S003C001P015R001A034_01_224"]
LARGE = ["S001C001P001R001A001_01_448", "S001C003P008R002A058_01_448"]
# Reference gradient keys -> (path in our params, stored as torch Linear [out, in]).
GRAD_KEYS = {
    "canonical_features": (("features",), False),
    "depth_mix_logit": (("depth_mix_logit",), False),
    "appearance_head.0.weight": (("appearance", "w0"), True),
    "appearance_head.0.bias": (("appearance", "b0"), False),
    "appearance_head.2.weight": (("appearance", "w1"), True),
    "appearance_head.2.bias": (("appearance", "b1"), False),
    "nfm.0.weight": (("nfm", "w0"), True),
    "nfm.0.bias": (("nfm", "b0"), False),
    "nfm.2.weight": (("nfm", "w1"), True),
    "nfm.2.bias": (("nfm", "b1"), False),
}


def _case(shared_data, name):
  ref = np.load(shared_data / REF / f"{name}.npz")
  cand = name.split("_")[-2]  # <sample>_<candidate>_<size>
  weights = checkpoint.load_released(shared_data / REF / f"draction_candidate_{cand}.safetensors")
  if "enable_nfm" in ref.files:
    assert bool(ref["enable_nfm"]) == ("nfm" in weights["params"])
  return ref, weights


def _render(weights, ref, dense):
  fn = jax.jit(lambda w, p, v: renderer.render_with_stats(
      w, p, v, image_size=int(ref["image_size"]), fov_deg=float(ref["fov_deg"]), dense=dense))
  frames, overflow, _ = fn(weights, ref["poses"], ref["vels"])
  return np.asarray(frames), np.asarray(overflow)


def _check_parity(shared_data, name, dense):
  ref, weights = _case(shared_data, name)
  frames, overflow = _render(weights, ref, dense)
  assert frames.shape == ref["frames"].shape and frames.dtype == np.float32
  assert (overflow == 0).all(), f"tiled path overflowed: {overflow}"
  err = np.abs(frames - ref["frames"])
  if dense:
    assert err.max() <= 1e-4, err.max()
  else:
    assert err.max() <= 4e-3, err.max()
    assert err.mean() <= 1e-4, err.mean()


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("dense", [True, False], ids=["dense", "tiled"])
def test_parity_224(shared_data, name, dense):
  _check_parity(shared_data, name, dense)


@pytest.mark.parametrize("name", LARGE)
def test_parity_448_tiled(shared_data, name):
  _check_parity(shared_data, name, dense=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARGE)
def test_parity_448_dense(shared_data, name):
  _check_parity(shared_data, name, dense=True)


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "tiled"])
def test_gradient_parity(shared_data, dense):
  ref, weights = _case(shared_data, "grad_S001C003P008R002A058_01_96")

  def loss(params, poses):
    frames = renderer.render({"params": params, "buffers": weights["buffers"]}, poses,
                             ref["vels"], image_size=int(ref["image_size"]), dense=dense)
    return jnp.mean(frames**2)

  value, (g_params, g_poses) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(
      weights["params"], ref["poses"])
  np.testing.assert_allclose(value, ref["loss"], rtol=1e-5)
  grads = {"poses": (np.asarray(g_poses), ref["grad_poses"])}
  for key, (path, transposed) in GRAD_KEYS.items():
    g = g_params
    for name in path:
      g = g[name]
    g = np.asarray(g)
    grads[key] = (g.T if transposed else g, ref[f"grad_{key}"])
  for key, (ours, theirs) in grads.items():
    rel = np.abs(ours - theirs).max() / np.abs(theirs).max()
    assert rel <= 1e-3, (key, rel)


def test_tiled_overflow_is_counted(shared_data):
  ref, weights = _case(shared_data, "S003C001P015R001A034_01_224")
  fn = jax.jit(lambda w, p, v: renderer.render_with_stats(w, p, v, image_size=224, capacity=512))
  frames, overflow, pairs = fn(weights, ref["poses"], ref["vels"])
  # One person touches ~900 (tile, Gaussian) pairs per frame here: 512 must overflow by the rest.
  np.testing.assert_array_equal(overflow, np.asarray(pairs) - 512)
  assert (np.asarray(overflow) > 0).all()
  full = _render(weights, ref, dense=False)[0]
  assert np.abs(np.asarray(frames) - full).max() > 0.1  # the dropped pairs are visible


def test_no_retrace_across_batches(shared_data):
  ref, weights = _case(shared_data, "grad_S001C003P008R002A058_01_96")

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(w, poses, vels):
    return renderer.render_batch(w, poses, vels, image_size=32)[0]

  poses = np.stack([ref["poses"], ref["poses"] * 1.01])
  vels = np.stack([ref["vels"], ref["vels"]])
  for i in range(3):
    step(weights, poses + 0.01 * i, vels).block_until_ready()
  chex.clear_trace_counter()
