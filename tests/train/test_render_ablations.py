"""Pins the renderer ablations of skel_llm/train/model.py (`render.kind`, `render.persons`)
against the renderers they stand for, and a train step of a fixed-renderer config."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skel_llm.render import DrAction, baselines, frames as frames_lib
from skel_llm.train import defaults, model as model_lib, trainer

S, N = 16, 2


def _two_person_clip(seed=0, t=8):
  rng = np.random.default_rng(seed)
  pos = np.zeros((1, t, 2, 25, 3), np.float32)
  base = rng.normal(0, 0.25, (25, 3))
  for i, x in enumerate((-0.15, 0.15)):  # overlapping persons: depth order matters
    pos[0, :, i] = base + np.array([x, 0.0, 3.0 + 0.3 * i]) + rng.normal(0, 0.02, (t, 25, 3))
  return jnp.asarray(pos), jnp.asarray([t], jnp.int32)


def _model(kind="draction", persons="joint"):
  return model_lib.SkeletonLLM(DrAction("ntu25", rngs=nnx.Rngs(0)), None, num_frames=N,
                               image_size=S, fov_deg=35.0, dense=True, kind=kind,
                               persons=persons)


def _selected(positions, lengths, stride=4):
  poses, vels, _ = frames_lib.select_frames_batch(positions, lengths, N, rng=None, stride=stride)
  return poses, vels


def test_overlay_is_the_maximum_of_each_person_alone():
  positions, lengths = _two_person_clip()
  joint = _model()
  overlay = _model(persons="overlay")
  poses, vels = _selected(positions, lengths)
  alone = [joint.renderer(poses[:, :, i:i + 1], vels[:, :, i:i + 1], image_size=S,
                          fov_deg=35.0, dense=True) for i in range(2)]
  got = overlay.render(positions, lengths, None)
  np.testing.assert_allclose(np.asarray(got), np.maximum(*map(np.asarray, alone)), atol=1e-6)
  # The joint composite occludes one person by the other; the overlay does not.
  assert float(jnp.abs(joint.render(positions, lengths, None) - got).max()) > 1e-2


def test_fixed_kinds_draw_the_baselines():
  positions, lengths = _two_person_clip(1)
  poses, vels = _selected(positions, lengths)
  got = _model(kind="velocity").render(positions, lengths, None)
  want = baselines.render_velocity_colour(poses[0], vels[0], image_size=S, fov_deg=35.0,
                                          topology="ntu25", dense=True)
  np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want), atol=1e-6)
  got = _model(kind="stick").render(positions, lengths, None)
  want = baselines.render_stick_figure(poses[0], image_size=S, fov_deg=35.0, topology="ntu25")
  np.testing.assert_allclose(np.asarray(got[0]), np.asarray(want), atol=1e-6)
  assert float(got.max()) > 0.5
  with pytest.raises(ValueError, match="draws the run's own topology only"):
    _model(kind="stick").render(positions, lengths, None,
                                DrAction("kinect20", rngs=nnx.Rngs(0)).weights())
  with pytest.raises(ValueError, match="render kind must be one of"):
    _model(kind="jtm")


def test_the_tile_side_reaches_the_tiled_rasteriser():
  """`render.tile` is the tile of every tiled draw (DrAction, its transferred weights, the
  velocity baseline); any tile gives the same frames up to the rasteriser's cut-off eps."""
  from skel_llm.render import renderer as renderer_lib
  positions, lengths = _two_person_clip(2)
  poses, vels = _selected(positions, lengths)
  s = 32
  # Tile 8 (not the default) and 16 (the default): eager renders, the slow part of this test.
  tiled = {t: model_lib.SkeletonLLM(DrAction("ntu25", rngs=nnx.Rngs(0)), None, num_frames=N,
                                    image_size=s, fov_deg=35.0, dense=False, tile=t)
           for t in (8, 16)}
  w = tiled[8].renderer.weights()
  frames = {t: np.asarray(m.render(positions, lengths, None)) for t, m in tiled.items()}
  for t, model in tiled.items():
    want, overflow, _ = renderer_lib.render_batch(w, poses, vels, image_size=s, fov_deg=35.0,
                                                  tile=t)
    assert int(np.asarray(overflow).sum()) == 0
    np.testing.assert_array_equal(frames[t], np.asarray(want))
    np.testing.assert_array_equal(np.asarray(model.render(positions, lengths, None, w)),
                                  np.asarray(want))
  velocity = model_lib.SkeletonLLM(DrAction("ntu25", rngs=nnx.Rngs(0)), None, num_frames=N,
                                   image_size=s, fov_deg=35.0, dense=False, tile=8,
                                   kind="velocity")
  np.testing.assert_array_equal(
      np.asarray(velocity.render(positions, lengths, None)[0]),
      np.asarray(baselines.velocity_colour_frames(w["buffers"], poses[0], vels[0],
                                                  image_size=s, fov_deg=35.0, tile=8)))
  assert float(frames[8].max()) > 0.5
  assert not np.array_equal(frames[8], frames[16])  # another tiling really ran
  np.testing.assert_allclose(frames[8], frames[16], atol=1e-4)
  with pytest.raises(ValueError, match="config.render.tile 0: the tiled rasteriser's tile"):
    trainer.Run(_config(tile=0), devices=jax.devices()[:1])


def _config(**render):
  c = defaults.load_config(pathlib.Path(__file__).resolve().parents[2] / "configs" /
                           "warmup.py", "smoke")
  c.render.update(render)
  c.total_steps = 4
  c.data.max_len = 320
  return c


def test_a_fixed_renderer_trains_without_the_renderer():
  c = _config(kind="stick", persons="overlay")
  with pytest.raises(ValueError, match="leave renderer/... out of config.trainable"):
    trainer.Run(c, devices=jax.devices()[:1]).init_state()
  c.trainable = (defaults.PROJECTOR,)
  run = trainer.Run(c, devices=jax.devices()[:1])
  state = run.init_state()
  before = jax.tree.map(np.asarray, state["params"])
  step = run.step_fn()
  for s in range(2):
    state, metrics = step(state, run.batch_to_device(run.train_data.batch(s)),
                          jax.random.key(0))
    assert np.isfinite(float(metrics["loss"]))
  moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != b)), state["params"], before)
  assert any(jax.tree.leaves(moved))  # the projector trains on the stick figures
  assert not any(k.startswith("renderer") for k in before)
