"""Pins launch/four_stages.sh with configs/{warmup,disc_ft,distill,refine}.py: the four stages
chained end to end.

The script runs once with the smoke preset, 4 steps per stage and the paper's freezing rules
given per stage on its command line (renderer + projector; the same; + LoRA r 4; projector +
LoRA). The warm-up of one step (`optim.warmup_fraction=0.25`) makes the first step's learning
rate 0, so each stage's step-1 checkpoint holds the state the stage started from. Then: each
stage ran its config's task, started from the previous stage's final variables (every variable
both have, bitwise), the renderer moved in stages 1-3 and stayed bitwise fixed in stage 4, and
a re-run skips finished stages and resumes an unfinished one from its own checkpoint.
"""

import functools
import os
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from skel_llm.train import defaults, optimizer

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "launch" / "four_stages.sh"
STAGES = ("warmup", "disc_ft", "distill", "refine")
STEPS = 4


def _tuple_flag(stage, *regexes):
  return f"{stage}:--config.trainable=({','.join(repr(r) for r in regexes)})"


FLAGS = (
    f"--config.total_steps={STEPS}", "--config.evals.heldout.num_clips=0",
    "--config.checkpoint.every_steps=1", f"--config.checkpoint.keep={STEPS}",
    "--config.optim.warmup_fraction=0.25",
    _tuple_flag("warmup", defaults.RENDERER, defaults.PROJECTOR),
    _tuple_flag("disc_ft", defaults.RENDERER, defaults.PROJECTOR),
    _tuple_flag("distill", defaults.RENDERER, defaults.PROJECTOR, defaults.LORA),
    "distill:--config.model.lora_rank=4",
    _tuple_flag("refine", defaults.PROJECTOR, defaults.LORA),
    "refine:--config.model.lora_rank=4",
)


def _config(stage):
  return defaults.load_config(REPO / "configs" / f"{stage}.py", "smoke")


def _run_script(root, cache, limit):
  env = dict(os.environ, XLA_FLAGS="", PYTHON=sys.executable,  # one CPU device per process
             JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  out = subprocess.run(["bash", str(SCRIPT), str(root), "smoke", *FLAGS], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=limit.seconds)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  return out.stdout


@functools.cache
def _state(root, stage, step):
  """({path: array} of params + frozen, set of trained paths) of a stage's checkpoint."""
  path = str(root / stage / "checkpoints" / str(step) / "state")
  ckptr = ocp.PyTreeCheckpointer()
  as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
                          ckptr.metadata(path).item_metadata.tree)
  tree = ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=as_numpy))
  assert int(tree["step"]) == step
  trained = {k: np.asarray(v) for k, v in ocp.tree.to_flat_dict(tree["params"]).items()}
  frozen = {k: np.asarray(v) for k, v in ocp.tree.to_flat_dict(tree["frozen"]).items()}
  assert not trained.keys() & frozen.keys()
  return {**trained, **frozen}, set(trained)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, jax_cache, deadline):
  root = tmp_path_factory.mktemp("four_stages")
  # A multiple (tests/conftest.py) of the former fixed 900 s, met on the development machine.
  return root, _run_script(root / "runs", jax_cache, deadline(900, "the four stages"))


def test_four_stages_run_in_order_with_their_tasks(chain):
  root, log = chain
  runs = root / "runs"
  tasks = re.findall(r"\[skel_llm\] task (\w+) \(eval (\w+)\)", log)
  assert [t for t, _ in tasks] == ["mqa", "yesno", "reason", "mqa"], log[-3000:]
  assert tasks == [(_config(s).data.task, _config(s).data.eval_task) for s in STAGES]
  # Stage 1 starts fresh (the smoke preset has no init_from); 2-4 from the previous workdir.
  assert re.findall(r"\[skel_llm\] init_from (\S+):", log) == [
      str(runs / s) for s in STAGES[:-1]]
  for stage in STAGES:
    assert (runs / stage / "result.json").is_file()
    assert sorted(os.listdir(runs / stage / "checkpoints")) == [str(s) for s in
                                                                range(1, STEPS + 1)]


def test_each_stage_starts_from_the_previous_stages_final_variables(chain):
  runs = chain[0] / "runs"
  schedule = optimizer.make_schedule(_config("warmup").optim.to_dict() | {
      "warmup_fraction": 0.25}, STEPS)
  # The premise: step 1 does not move anything, so checkpoint 1 is the state the stage began with.
  assert float(schedule(0)) == 0.0 and float(schedule(1)) > 0.0
  for prev, stage in zip(STAGES, STAGES[1:]):
    prev_start, _ = _state(runs, prev, 1)
    prev_final, prev_trained = _state(runs, prev, STEPS)
    start, _ = _state(runs, stage, 1)
    shared = start.keys() & prev_final.keys()
    for k in shared:
      np.testing.assert_array_equal(start[k], prev_final[k], err_msg=f"{stage} {k}")
    # What was handed over is what the previous stage trained, not its starting point.
    moved = [k for k in shared & prev_trained if not np.array_equal(prev_final[k], prev_start[k])]
    assert any(k[0] == "renderer" for k in moved) and any("multi_modal_projector" in k
                                                          for k in moved), (stage, moved)
    new = start.keys() - prev_final.keys()
    if stage == "distill":  # LoRA arrives in stage 3: fresh adapters, B = 0
      assert new and all(k[-1] in ("lora_a", "lora_b") for k in new)
      assert not any(start[k].any() for k in new if k[-1] == "lora_b")
    else:
      assert not new and start.keys() == prev_final.keys()


def test_renderer_trains_in_stages_1_to_3_and_is_frozen_in_stage_4(chain):
  runs = chain[0] / "runs"
  for stage in STAGES:
    start, _ = _state(runs, stage, 1)
    final, trained = _state(runs, stage, STEPS)
    renderer = [k for k in final if k[0] == "renderer"]
    assert renderer
    changed = [k for k in renderer if not np.array_equal(final[k], start[k])]
    if stage == "refine":
      assert not any(k[0] == "renderer" for k in trained)
      assert all(re.search("multi_modal_projector|lora_[ab]", "/".join(k)) for k in trained)
      assert not changed
      prev_final, _ = _state(runs, "distill", STEPS)
      for k in renderer:
        np.testing.assert_array_equal(final[k], prev_final[k], err_msg=str(k))
    else:
      assert ("renderer", "features") in changed, (stage, changed)


def test_rerun_skips_finished_stages_and_resumes_an_unfinished_one(chain, jax_cache, deadline):
  root, _ = chain
  runs = root / "runs"
  (runs / "refine" / "result.json").unlink()
  log = _run_script(runs, jax_cache, deadline(900, "the rerun"))
  for i, stage in enumerate(STAGES[:-1]):
    assert f"stage {i + 1}/4 {stage}: {runs / stage}/result.json exists; skipped" in log
  assert "stage 4/4 refine: " in log and "skipped" not in log.split("stage 4/4 refine: ")[1]
  # The trainer resumed from refine's own last checkpoint, not from init_from.
  assert f"steps {STEPS} -> {STEPS}" in log and "[skel_llm] init_from" not in log, log[-2000:]
  assert (runs / "refine" / "result.json").is_file()
