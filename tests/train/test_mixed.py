"""Mixed-format training (`config.data.topologies`, `render.mixed`): a smoke run on 8 simulated
devices trains on ntu25 + smpl22 rows, and evaluates each topology with the layout it trained
that topology's rows with; bad mixtures are rejected naming the field."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skel_llm.train import defaults, run as run_lib, validate


def _config(**data):
  c = defaults.load_config("configs/distill.py", "smoke,mixed")
  c.total_steps = 4
  c.evals.heldout.num_clips = 8
  c.evals.heldout_smpl22.num_clips = 8
  assert sorted(c.evals) == ["heldout", "heldout_smpl22"]
  for k, v in data.items():
    c.data[k] = v
  return c


@pytest.fixture(scope="module")
def trained():
  """(run, state, metrics of every step) of 4 mixed-format smoke steps (8 devices, batch 8)."""
  run = run_lib.Run(_config())
  state = run.init_state()
  step = run.step_fn(max_traces=1)
  rng = jax.random.PRNGKey(0)
  batches, metrics = [], []
  for s in range(run.config.total_steps):
    batch = run.train_data.batch(s)
    batches.append(batch)
    state, m = step(state, run.batch_to_device(batch), rng)
    metrics.append(jax.tree.map(float, m))
  return run, state, batches, metrics


def test_mixed_batches_carry_each_rows_topology_and_padded_joints(trained):
  run, _, batches, _ = trained
  topo = np.concatenate([b["topology"] for b in batches])
  assert set(topo.tolist()) == {0, 1}, "both ntu25 and smpl22 rows are trained"
  assert run.train_data.topologies == ("ntu25", "smpl22")
  # about half each over the whole split (weights 0.5 / 0.5)
  share = np.mean(run.train_source.assignment == 1)
  assert 0.35 < share < 0.65, share
  for b in batches:
    assert b["positions"].shape[-2] == 25
    smpl = b["topology"] == 1
    # smpl22 rows: joints 22..24 are padding (zero), the 22 real joints are not
    assert np.all(b["positions"][smpl][..., 22:, :] == 0)
    assert np.all(np.any(b["positions"][smpl][:, 0, 0, :22] != 0, axis=-1))
  # a sample's clip is the smpl22 generator's clip of that index (same seed), placed
  clip = run.train_source[int(np.flatnonzero(run.train_source.assignment == 1)[0])]
  assert clip.topology == "smpl22" and clip.positions.shape[-2] == 22


def test_train_steps_are_finite_and_train_the_renderer(trained):
  run, state, _, metrics = trained
  for m in metrics:
    for k in ("loss", "l2_grads", "l2_updates"):
      assert np.isfinite(m[k]), (k, m)
  assert metrics[-1]["loss"] < metrics[0]["loss"]
  fresh = run.init_state()
  feats = lambda s: np.asarray(s["params"]["renderer"]["features"])  # noqa: E731
  assert not np.allclose(feats(state), feats(fresh))


def test_per_topology_evaluation_draws_what_training_drew(trained):
  """The smpl22 evaluator renders with the trained renderer transferred to smpl22
  (`PredictFns.render`, the cross-format path): the same frames the training step's mixed
  render gives that clip as an smpl22 row; and both evaluators run and report."""
  run, state, batches, _ = trained
  b = batches[0]
  rows = np.flatnonzero(b["topology"] == 1)[:1]
  i = int(rows[0])
  model = run.render_fn()
  mixed_frames = np.asarray(model(state, jnp.asarray(b["positions"][i:i + 1]),
                                  jnp.asarray(b["num_frames"][i:i + 1]),
                                  jnp.asarray(b["topology"][i:i + 1])))
  pos22 = b["positions"][i:i + 1, :, :, :22]
  predict = run.predict_fns()
  alone, _ = predict._render_with(state, predict.transferred(state, "smpl22"),
                                  jnp.asarray(pos22), jnp.asarray(b["num_frames"][i:i + 1]))
  assert float(np.mean(mixed_frames > 0)) > 0.01
  np.testing.assert_allclose(mixed_frames, np.asarray(alone), atol=2e-6, rtol=0)
  # the PNG strips of the first 4 training clips draw each with its own layout too
  assert i < 4
  np.testing.assert_allclose(run.strip_frames(state)[i], np.asarray(alone)[0], atol=2e-6, rtol=0)
  results = run.evaluators().run(state, run.config.total_steps, final=True)
  for name in ("heldout", "heldout_smpl22"):
    assert 0.0 <= results[name]["strict"] <= 1.0


@pytest.mark.parametrize("field,value,match", [
    ("topologies", ("ntu25", "ntu99"), r"config.data.topologies: 'ntu99' is unknown"),
    ("topologies", ("smpl22", "kinect20"), r"config.data.topologies .* must include "
                                           r"config.render.topology 'ntu25'"),
    ("topologies", ("ntu25",), r"config.data.topologies \('ntu25',\): a mixture needs at least"),
    ("topology_weights", (1.0,), r"config.data.topology_weights \(1.0,\) has 1 entries"),
    ("topology_weights", (1.0, -1.0), r"config.data.topology_weights .* positive, finite"),
    ("topology_weights", (1.0, float("nan")), r"config.data.topology_weights .* positive"),
    ("topology_weights", ("a", 1.0), r"config.data.topology_weights .* must be numbers"),
    ("source", "tfds", r"config.data.tfds_names \(\) must name one TFDS build per topology"),
    ("tfds_names", ("synthetic_actions/smoke",), r"config.data.tfds_names .* is for "
                                                 r"config.data.source='tfds'"),
])
def test_validation_rejects_bad_mixtures(field, value, match):
  c = _config()
  c.data[field] = value
  with pytest.raises(ValueError, match=match):
    validate.check_config(c)


def test_validation_rejects_weights_or_builds_without_topologies():
  c = copy.deepcopy(_config())
  c.data.topologies = ()
  with pytest.raises(ValueError, match=r"config.data.topology_weights .* without "
                                       r"config.data.topologies"):
    validate.check_config(c)
  c.data.topology_weights = ()
  c.data.tfds_names = ("synthetic_actions/smoke",)
  with pytest.raises(ValueError, match=r"config.data.tfds_names .* without "
                                       r"config.data.topologies"):
    validate.check_config(c)
