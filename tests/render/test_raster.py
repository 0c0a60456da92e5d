"""`skel_llm.render.raster`: tiled == dense, a per-pixel loop, finite differences, degenerate input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skel_llm.render import camera, checkpoint, raster, renderer


def _random_gaussians(seed, g=40, s=40):
  rng = np.random.default_rng(seed)
  uv = rng.uniform(-4, s + 4, size=(g, 2)).astype(np.float32)
  a = rng.uniform(0.5, 12, g)
  c = rng.uniform(0.5, 12, g)
  b = rng.uniform(-0.8, 0.8, g) * np.sqrt(a * c)
  cov = np.stack([np.stack([a, b], -1), np.stack([b, c], -1)], -2).astype(np.float32)
  alpha = rng.uniform(0, 1, g).astype(np.float32)
  alpha[::7] = 0.0
  colour = rng.uniform(0, 1, (g, 3)).astype(np.float32)
  return jnp.asarray(uv), jnp.asarray(cov), camera.conic(jnp.asarray(cov)), jnp.asarray(alpha), \
      jnp.asarray(colour)


def _loop_reference(uv, con, alpha, colour, s):
  """The released renderer's per-pixel recurrence, literally, in float64 numpy."""
  uv, con, alpha, colour = (np.asarray(x, np.float64) for x in (uv, con, alpha, colour))
  ys, xs = np.mgrid[0:s, 0:s]
  out = np.zeros((s, s, 3))
  trans = np.ones((s, s))
  for i in range(len(alpha)):
    dx, dy = xs - uv[i, 0], ys - uv[i, 1]
    w = np.clip(np.exp(-0.5 * (con[i, 0] * dx * dx + 2 * con[i, 1] * dx * dy + con[i, 2] * dy * dy)),
                0, 1)
    a = 1 - np.exp(-alpha[i] * w)
    out += (trans * a)[..., None] * colour[i]
    trans *= 1 - a
  return np.clip(out, 0, 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_and_tiled_match_the_per_pixel_recurrence(seed):
  s = 40  # not a multiple of the tile: exercises the padding
  uv, cov, con, alpha, colour = _random_gaussians(seed, s=s)
  ref = _loop_reference(uv, con, alpha, colour, s)
  dense = np.asarray(jax.jit(raster.composite_dense, static_argnums=4)(uv, con, alpha, colour, s))
  np.testing.assert_allclose(dense, ref, atol=2e-6)
  for tile in (8, 16):
    img, overflow, pairs = jax.jit(raster.composite_tiled, static_argnums=5,
                                   static_argnames=("tile", "window"))(
                                       uv, cov, con, alpha, colour, s, tile=tile, window=6)
    assert int(overflow) == 0 and int(pairs) > 0
    err = np.abs(np.asarray(img) - ref)
    # Cut-off at eps = 1e-5 per Gaussian: at most ~40 Gaussians omitted per pixel.
    assert err.max() <= 40 * raster.DEFAULT_EPS, err.max()


def test_overflow_counts_dropped_pairs():
  uv, cov, con, alpha, colour = _random_gaussians(2)
  fn = jax.jit(raster.composite_tiled, static_argnums=5,
               static_argnames=("tile", "capacity", "window"))
  _, overflow, pairs = fn(uv, cov, con, alpha, colour, 40, tile=8, capacity=256, window=6)
  _, none, pairs_big = fn(uv, cov, con, alpha, colour, 40, tile=8, capacity=4096, window=6)
  assert int(pairs) == int(pairs_big) > 256
  assert int(overflow) == int(pairs) - 256 and int(none) == 0
  # A window too small for the large Gaussians: their outer tiles are counted as dropped.
  overlap = np.asarray(raster.tile_overlap(uv, cov, alpha, 40, 8, raster.DEFAULT_EPS))
  per_gauss = overlap.sum(0)
  _, small, pairs_small = fn(uv, cov, con, alpha, colour, 40, tile=8, capacity=4096, window=2)
  assert int(pairs_small) == overlap.sum() == int(pairs)
  boxes = np.asarray(raster._tile_ranges(uv, cov, alpha, 40, 8, raster.DEFAULT_EPS)[:4])
  nx, ny = boxes[1] - boxes[0] + 1, boxes[3] - boxes[2] + 1
  expected = int(np.sum(per_gauss - np.minimum(nx, 2) * np.minimum(ny, 2) * (per_gauss > 0)))
  assert int(small) == expected > 0


def test_segmented_cumsum_against_numpy():
  rng = np.random.default_rng(0)
  seg = np.sort(rng.integers(0, 30, 300)).astype(np.int32)
  seg[-40:] = 77  # a run spanning several blocks
  x = rng.normal(size=(300, 5)).astype(np.float32)
  out = np.asarray(jax.jit(raster.segmented_cumsum)(x, seg))
  ref = np.zeros_like(x)
  for s in np.unique(seg):
    ref[seg == s] = np.cumsum(x[seg == s], 0)
  np.testing.assert_allclose(out, ref, atol=1e-5)


def _tiny_weights(shared_data):
  return checkpoint.load_released(shared_data / "draction_reference" / "draction_candidate_01.safetensors")


def _clip(shared_data, frames=2):
  ref = np.load(shared_data / "draction_reference" / "grad_S001C003P008R002A058_01_96.npz")
  return ref["poses"][:frames], ref["vels"][:frames]


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "tiled"])
def test_finite_differences(shared_data, dense):
  """Directional derivatives of a pixel-weighted loss vs central differences (float32)."""
  w = _tiny_weights(shared_data)
  poses, vels = _clip(shared_data, 1)
  probe = jnp.asarray(np.random.default_rng(0).uniform(size=(1, 24, 24, 3)), jnp.float32)

  def loss(params, poses):
    f = renderer.render({"params": params, "buffers": w["buffers"]}, poses, vels, image_size=24,
                        dense=dense)
    return jnp.sum(f * probe)

  loss_j = jax.jit(loss)
  g_params, g_poses = jax.jit(jax.grad(loss, argnums=(0, 1)))(w["params"], poses)
  rng = np.random.default_rng(1)
  h = 1e-3
  for _ in range(2):
    dp = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=np.shape(x)), jnp.float32), w["params"])
    dx = jnp.asarray(rng.normal(size=poses.shape) * (poses != 0), jnp.float32)
    plus = loss_j(jax.tree.map(lambda a, b: a + h * b, w["params"], dp), poses + h * 0.01 * dx)
    minus = loss_j(jax.tree.map(lambda a, b: a - h * b, w["params"], dp), poses - h * 0.01 * dx)
    fd = (float(plus) - float(minus)) / (2 * h)
    ad = sum(float(jnp.vdot(a, b)) for a, b in zip(jax.tree.leaves(g_params), jax.tree.leaves(dp)))
    ad += 0.01 * float(jnp.vdot(g_poses, dx))
    assert abs(fd - ad) <= 2e-2 * max(abs(ad), 1e-3), (fd, ad)


@pytest.mark.parametrize("dense", [True, False], ids=["dense", "tiled"])
def test_finite_gradients_on_degenerate_input(shared_data, dense):
  w = _tiny_weights(shared_data)
  poses, vels = _clip(shared_data, 2)
  poses = poses.copy()
  poses[0, 0, 1] = poses[0, 0, 0]      # zero-length bone (joints 1-2)
  poses[0, 0, 20] = poses[0, 0, 2]     # coincident joints
  poses[0, 0, 3, 2] = -0.5             # a joint behind the camera
  poses[0, 1] = 0.0                    # absent second person
  poses[1] = 0.0                       # an all-zero frame
  clips = [poses, np.zeros_like(poses)]  # and an all-zero clip

  def loss(params, poses):
    f = renderer.render({"params": params, "buffers": w["buffers"]}, poses, vels, image_size=24,
                        dense=dense)
    return jnp.mean(f**2), f

  fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))
  for clip in clips:
    (value, frames), (g_params, g_poses) = fn(w["params"], clip)
    assert np.isfinite(float(value))
    assert np.isfinite(np.asarray(frames)).all()
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(g_params))
    assert np.isfinite(np.asarray(g_poses)).all()
  np.testing.assert_array_equal(np.asarray(frames), 0.0)  # all-zero clip renders black
