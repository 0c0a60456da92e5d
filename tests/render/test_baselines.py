"""Fixed baseline renderers: shape, where the ink falls, colour coding, gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from skel_llm.render import baselines, camera


def _clip(shared_data):
  ref = np.load(shared_data / "draction_reference" / "grad_S001C003P008R002A058_01_96.npz")
  return ref["poses"][:2], ref["vels"][:2]


def _joint_pixels(poses, s):
  uv, _ = camera.project(jnp.asarray(poses), jnp.zeros(poses.shape + (3,)), s)
  return np.rint(np.asarray(uv)).astype(int)


def test_stick_figure_draws_joints_and_nothing_far_away(shared_data):
  poses, _ = _clip(shared_data)
  s = 64
  img = np.asarray(baselines.render_stick_figure(poses, image_size=s))
  assert img.shape == (2, s, s, 3) and img.dtype == np.float32
  uv = _joint_pixels(poses, s)
  for f in range(2):
    for p in range(2):
      for j in range(25):
        x, y = uv[f, p, j]
        if 0 <= x < s and 0 <= y < s:
          assert img[f, y, x].max() >= 0.99, (f, p, j)
  # Pixels farther than 3 px from every joint and bone stay black: check the corners.
  assert img[:, :3, :3].max() == 0.0 and img[:, -3:, -3:].max() == 0.0
  # An absent second person draws nothing: the first person alone gives the same image
  # wherever the second person is far away.
  alone = poses.copy()
  alone[:, 1] = 0.0
  img1 = np.asarray(baselines.render_stick_figure(alone, image_size=s))
  assert img1.sum() < img.sum()


def test_velocity_colour_codes_speed_in_green(shared_data):
  poses, vels = _clip(shared_data)
  still = np.asarray(baselines.render_velocity_colour(poses, np.zeros_like(vels), image_size=48))
  moving = np.asarray(baselines.render_velocity_colour(poses, vels, image_size=48))
  assert still.shape == (2, 48, 48, 3)
  assert still[..., 1].max() == 0.0  # no motion, no green
  assert moving[..., 1].sum() > still[..., 1].sum()
  np.testing.assert_allclose(moving[..., 0], still[..., 0], atol=1e-6)  # red = depth only
  g = jax.grad(lambda p: jnp.sum(baselines.render_velocity_colour(p, vels, image_size=24)))(
      jnp.asarray(poses))
  assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0
