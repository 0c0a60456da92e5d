"""Pins skel_llm/train/step.py (through trainer.Run): sharding invariance, one compile, which
parameters move.

One single-device run and one (data 2, fsdp 2, tensor 2) run on the 8 simulated CPU devices,
both with the stage-1 rules (renderer + projector train; vision tower and LLM frozen).
"""

import chex
import jax
import numpy as np
import pytest

from skel_llm.train import defaults, trainer

STEPS = 3


def _config():
  import pathlib
  path = pathlib.Path(__file__).resolve().parents[2] / "configs" / "warmup.py"
  c = defaults.load_config(path, "smoke")
  c.trainable = (defaults.RENDERER, defaults.PROJECTOR)
  c.optim.lr = 1e-2  # large enough that three steps visibly move the renderer
  c.optim.warmup_fraction = 0.0
  c.total_steps = 10
  c.data.max_len = 320
  return c


def _train(mesh, devices):
  chex.clear_trace_counter()  # the counter is per function, shared by the two runs
  c = _config()
  c.mesh.update(mesh)
  run = trainer.Run(c, devices=devices)
  state = run.init_state()
  before = jax.tree.map(lambda x: np.array(x), state)
  step = run.step_fn(max_traces=1)
  rng = jax.random.key(c.seed)
  losses = []
  for s in range(STEPS):
    state, metrics = step(state, run.batch_to_device(run.train_data.batch(s)), rng)
    losses.append(float(metrics["loss"]))
  return run, before, state, losses


@pytest.fixture(scope="module")
def runs():
  single = _train(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  sharded = _train(dict(data=2, fsdp=2, tensor=2), jax.devices()[:8])
  return single, sharded


def test_sharded_step_equals_single_device(runs):
  (_, _, s1, l1), (run8, _, s8, l8) = runs
  assert len(jax.devices()) >= 8
  np.testing.assert_allclose(l8, l1, rtol=1e-5, atol=1e-5)
  for part in ("params", "frozen", "opt_state"):
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(s1[part]),
                            jax.tree.leaves(s8[part])):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5,
                                 err_msg=f"{part}{jax.tree_util.keystr(path)}")
  # The parameters really are distributed: some leaf is split over fsdp and some over tensor.
  specs = [x.sharding.spec for x in jax.tree.leaves(s8["frozen"])]
  assert any("fsdp" in str(sp) for sp in specs) and any("tensor" in str(sp) for sp in specs)
  assert run8.step_fn()._cache_size() == 1


def test_renderer_learns_and_frozen_parameters_are_bitwise_unchanged(runs):
  (run, before, after, _), _ = runs
  tr_paths = run.layout.trainable_paths
  assert any(p.startswith("renderer/") for p in tr_paths)
  assert any(p.startswith("mllm/multi_modal_projector/") for p in tr_paths)
  assert not any(p.startswith(("mllm/vision_tower", "mllm/language_model")) for p in tr_paths)
  moved = {jax.tree_util.keystr(p): not np.array_equal(np.asarray(a), b) for (p, a), b in zip(
      jax.tree_util.tree_leaves_with_path(after["params"]), jax.tree.leaves(before["params"]))}
  renderer_moved = [k for k, v in moved.items() if k.startswith("['renderer']") and v]
  assert "['renderer']['features']" in renderer_moved, moved
  assert "['renderer']['depth_mix_logit']" in renderer_moved, moved
  for (p, a), b in zip(jax.tree_util.tree_leaves_with_path(after["frozen"]),
                       jax.tree.leaves(before["frozen"])):
    np.testing.assert_array_equal(np.asarray(a), b, err_msg=jax.tree_util.keystr(p))
  # No optimizer state for frozen leaves: the optimizer tree holds only trainable shapes.
  n_opt = sum(x.size for x in jax.tree.leaves(after["opt_state"]))
  n_tr = sum(x.size for x in jax.tree.leaves(after["params"]))
  # Adam's mu and nu per trainable number, plus scalar step counters (adam, schedule).
  assert 0 < n_opt - 2 * n_tr <= 4, (n_opt, n_tr)
  # What the renderer draws changed.
  batch = run.train_data.batch(0)
  render = run.render_fn()
  f_before = np.asarray(render(jax.tree.map(jax.numpy.asarray, before), batch["positions"][:2],
                               batch["num_frames"][:2]))
  f_after = np.asarray(render(after, batch["positions"][:2], batch["num_frames"][:2]))
  assert f_before.shape == (2, 4, 24, 24, 3)
  assert np.abs(f_after - f_before).max() > 1e-3
