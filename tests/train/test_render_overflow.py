"""Pins the tiled rasteriser's dropped pairs through training (skel_llm/train/model.py
`render(with_stats=True)`, the step's `render_overflow`, lifecycle.OverflowTally): what the
renderers count is what the step and the evaluators (eval.predict.PredictFns.take_dropped)
report, and a run or evaluation that drops pairs says so and records it."""

import json
import pathlib

import jax
import numpy as np
import pytest
from flax import nnx

from skel_llm.render import DrAction, baselines, frames as frames_lib, renderer as renderer_lib
from skel_llm.train import defaults, model as model_lib, trainer

REPO = pathlib.Path(__file__).resolve().parents[2]
S, N, CAP = 32, 2, 24  # CAP: far below the ~300 pairs a 32 px frame of one person needs


def _clip(seed=0, t=8, persons=2):
  rng = np.random.default_rng(seed)
  pos = np.zeros((1, t, 2, 25, 3), np.float32)
  base = rng.normal(0, 0.25, (25, 3))
  for i in range(persons):
    pos[0, :, i] = base + np.array([0.3 * i - 0.15, 0.0, 3.0]) + rng.normal(0, 0.02, (t, 25, 3))
  return pos, np.asarray([t], np.int32)


def _model(capacity, **kw):
  return model_lib.SkeletonLLM(DrAction("ntu25", rngs=nnx.Rngs(0)), None, num_frames=N,
                               image_size=S, fov_deg=35.0, dense=False, tile=8,
                               capacity=capacity, **kw)


def test_render_counts_what_each_renderer_drops():
  positions, lengths = _clip()
  poses, vels, _ = frames_lib.select_frames_batch(positions, lengths, N, rng=None, stride=4)
  view = dict(image_size=S, fov_deg=35.0, tile=8)
  w = _model(None).renderer.weights()
  for capacity in (CAP, None):
    frames, overflow = _model(capacity).render(positions, lengths, None, with_stats=True)
    want, per_frame, _ = renderer_lib.render_batch(w, poses, vels, capacity=capacity, **view)
    np.testing.assert_array_equal(np.asarray(frames), np.asarray(want))
    assert overflow.shape == (1,) and overflow.dtype == np.int32
    assert int(overflow[0]) == int(np.asarray(per_frame).sum())
    assert (int(overflow[0]) > 0) == (capacity is not None)  # the default holds every pair
  # Overlaid persons: each person's own draw drops its own pairs; the clip counts them all.
  _, got = _model(CAP, persons="overlay").render(positions, lengths, None, with_stats=True)
  alone = [renderer_lib.render_batch(w, poses[:, :, i:i + 1], vels[:, :, i:i + 1],
                                     capacity=CAP, **view)[1] for i in range(2)]
  assert int(got[0]) == sum(int(np.asarray(a).sum()) for a in alone) > 0
  # The fixed velocity renderer splats DrAction's Gaussians too; the stick figure has no tiles.
  _, got = _model(CAP, kind="velocity").render(positions, lengths, None, with_stats=True)
  _, want = baselines.velocity_colour_frames(w["buffers"], poses[0], vels[0], capacity=CAP,
                                             with_stats=True, **view)
  assert int(got[0]) == int(np.asarray(want).sum()) > 0
  _, got = _model(CAP, kind="stick").render(positions, lengths, None, with_stats=True)
  assert int(got[0]) == 0


def _config(**render):
  c = defaults.load_config(REPO / "configs" / "warmup.py", "smoke")
  c.render.update(dict(dense=False, tile=8, **render))
  c.total_steps = 2
  c.log_every = 1
  c.data.max_len = 320
  c.evals.heldout.num_clips = 0  # the smoke preset's only evaluator
  return c


def test_the_step_reports_the_dropped_pairs_and_the_run_records_them(tmp_path, capsys):
  c = _config(capacity=CAP)
  run = trainer.Run(c, devices=jax.devices()[:1])
  state = run.init_state()
  batch = run.batch_to_device(run.train_data.batch(0))
  rng = jax.random.key(c.seed)
  # The frames the step draws: its data key is split from fold_in(rng, step), as in step.py.
  k_data = jax.random.split(jax.random.fold_in(rng, state["step"]))[0]
  model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
  _, want = model.render(batch["positions"], batch["num_frames"], k_data, with_stats=True)
  _, metrics = run.step_fn()(state, batch, rng)
  assert int(metrics["render_overflow"]) == int(np.asarray(want).sum()) > 0

  result = trainer.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  record = result["render_overflow"]
  assert record["steps"] == 2 and record["first_step"] == 1 and record["pairs"] > 0
  assert record["counted_after_step"] == 0
  assert json.loads((tmp_path / "run" / "result.json").read_text())["render_overflow"] == record
  assert "step 1: the tiled rasteriser dropped" in capsys.readouterr().out
  # Rerunning the finished stage trains nothing and keeps the record of the run that did.
  again = trainer.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  assert again["render_overflow"] == record


def test_the_capacity_is_checked():
  with pytest.raises(ValueError, match=r"config.render.capacity -1: the \(tile, Gaussian\)"):
    trainer.Run(_config(capacity=-1), devices=jax.devices()[:1])


def test_the_evaluators_record_what_their_renders_drop(tmp_path, capsys):
  for capacity in (CAP, 0):  # 0: the rasteriser's default, which holds every pair
    c = _config(capacity=capacity)
    c.evals.heldout.num_clips = 8
    run = trainer.Run(c, devices=jax.devices()[:1])
    state = run.init_state()
    # PredictFns.render counts what the model's own render reports, and restarts when read.
    fns = run.predict_fns()
    batch = run.batch_to_device(run.train_data.batch(0))
    model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
    _, want = model.render(batch["positions"], batch["num_frames"], None, with_stats=True)
    fns.render(state, batch["positions"], batch["num_frames"])
    fns.render(state, batch["positions"], batch["num_frames"])
    assert fns.take_dropped() == 2 * int(np.asarray(want).sum())
    assert fns.take_dropped() == 0
    # The evaluator's record counts its own renders only (not the two above).
    fns.render(state, batch["positions"], batch["num_frames"])
    run.evaluators().run(state, 0, final=True, out_dir=str(tmp_path / str(capacity)))
    record = json.loads((tmp_path / str(capacity) / "heldout.json").read_text())
    out = capsys.readouterr().out
    if capacity == 0:
      assert int(np.asarray(want).sum()) == 0 and record["render_overflow"] == 0
      assert "dropped" not in out
    else:
      assert record["render_overflow"] > 0
      assert (f"eval heldout at step 0: the tiled rasteriser dropped "
              f"{record['render_overflow']} (tile, Gaussian) pairs") in out
