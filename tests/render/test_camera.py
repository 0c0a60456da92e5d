"""`skel_llm.render.camera`: projection by hand, the Jacobian by autodiff, placement rules."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from skel_llm.render import camera


def test_projection_by_hand():
  s = 448
  f = s / (2 * math.tan(math.radians(30)))
  means = jnp.array([[0.0, 0.0, 2.0], [0.5, -0.25, 2.5], [0.1, 0.2, 0.0]])
  uv, _ = camera.project(means, jnp.tile(jnp.eye(3) * 1e-4, (3, 1, 1)), s)
  expected = [[224.0, 224.0], [f * 0.5 / 2.5 + 224, f * 0.25 / 2.5 + 224],
              [f * 0.1 / 1e-4 + 224, -f * 0.2 / 1e-4 + 224]]  # z clamped to 1e-4
  np.testing.assert_allclose(np.asarray(uv), expected, rtol=1e-6)


def test_screen_covariance_is_jacobian_sandwich():
  mean = jnp.array([0.3, -0.2, 3.1])
  cov = camera.covariance3d(jnp.array([[0.02, 0.03, 0.01]]),
                            jnp.array([[0.9, 0.1, -0.3, 0.2]]))[0]
  jac = jax.jacfwd(lambda m: camera.project(m[None], cov[None], 96, 50.0)[0][0])(mean)
  _, cov2d = camera.project(mean[None], cov[None], 96, 50.0)
  expected = jac @ cov @ jac.T + 1e-5 * jnp.eye(2)
  np.testing.assert_allclose(np.asarray(cov2d[0]), np.asarray(expected), rtol=1e-5)


def test_covariance_rotation_keeps_eigenvalues():
  scales = jnp.array([[0.01, 0.02, 0.04]])
  cov = camera.covariance3d(scales, jnp.array([[0.5, 0.5, -0.5, 0.5]]))[0]
  np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(np.asarray(cov))),
                             np.array([1e-4, 4e-4, 16e-4]), rtol=1e-5)


def test_view_rotation_keeps_distances_and_absent_person():
  rng = np.random.default_rng(0)
  poses = rng.normal(size=(4, 2, 5, 3)).astype(np.float32) + [0, 0, 3]
  poses[:, 1] = 0.0
  vels = rng.normal(size=poses.shape).astype(np.float32)
  p2, v2 = camera.random_view_rotation(jax.random.key(1), jnp.asarray(poses), jnp.asarray(vels))
  p2, v2 = np.asarray(p2), np.asarray(v2)
  assert np.abs(p2 - poses).max() > 1e-3
  np.testing.assert_array_equal(p2[:, 1], 0.0)
  d = lambda p: np.linalg.norm(p[:, 0, :, None] - p[:, 0, None], axis=-1)  # noqa: E731
  np.testing.assert_allclose(d(p2), d(poses), atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(v2[:, 0], axis=-1),
                             np.linalg.norm(vels[:, 0], axis=-1), rtol=1e-5)
  np.testing.assert_allclose(p2[:, 0, :, 1], poses[:, 0, :, 1], atol=1e-6)  # vertical axis


def test_placement_rules():
  pos = np.zeros((3, 2, 4, 3), np.float32)
  pos[:, 0] = [[0.1, 1.0, 0.2]] * 4  # median z 0.2 < 0.5: shifted by +1
  out = camera.place(pos, "kinect")
  np.testing.assert_allclose(out[:, 0, :, 2], 1.2)
  np.testing.assert_array_equal(out[:, 1], 0.0)
  pos[:, 0] = [[0.1, 1.0, 3.0]] * 4  # a no-op for NTU-like depth
  np.testing.assert_array_equal(camera.place(pos, "kinect"), pos)
  h = np.zeros((2, 1, 3, 3), np.float32)
  h[:, 0] = [[0.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.2, 1.6, 1.0]]
  out = camera.place(h, "humanml3d")
  np.testing.assert_allclose(np.median(out[..., 1]), 0.0, atol=1e-6)
  np.testing.assert_allclose(np.median(out[..., 2]), 2.5, atol=1e-6)
  np.testing.assert_allclose(out[..., 0], h[..., 0])
