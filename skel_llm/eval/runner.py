"""Evaluating a finished run (the library behind `python -m skel_llm.evaluate`).

`evaluate_run` restores a run's checkpoint (or its released-format exports) and runs the
config's evaluators; `group_table` summarises the runs of one protocol group.
"""

from __future__ import annotations

import contextlib
import json

from skel_llm import fs


def evaluate_run(config, workdir: str, *, step: int | None = None, from_export: bool = False,
                 out_dir: str | None = None, devices=None) -> tuple[int, dict]:
  """(step evaluated, {evaluator: scalars}) of a run's checkpoint or exports."""
  if not fs.isdir(workdir):
    raise FileNotFoundError(f"--workdir {workdir} does not exist")
  with contextlib.ExitStack() as stack:
    if from_export:
      renderer = fs.join(workdir, "export", "draction.safetensors")
      hf = fs.join(workdir, "export", "internvl_merged")
      missing = [p for p in (renderer, hf) if not fs.exists(p)]
      if missing:
        raise FileNotFoundError(f"--from_export: {missing} missing; the run must export both "
                                f"(config.export.renderer and config.export.merged_hf)")
      # The loaders read local files: a gs:// export folder is downloaded first.
      local = stack.enter_context(fs.local_copy(fs.join(workdir, "export")))
      config.render.init = fs.join(local, "draction.safetensors")
      config.init_from = "hf:" + fs.join(local, "internvl_merged")
      config.model.lora_rank = 0  # the merged export holds the adapters folded in
    return _evaluate(config, workdir, step, from_export, out_dir, devices)


def _evaluate(config, workdir, step, from_export, out_dir, devices):
  from skel_llm.train import run as run_lib
  run = run_lib.Run(config, None, devices)
  if from_export:
    from skel_llm.train import build
    state = build.load_init_from(run, config.init_from)
    step = int(fs.read_json(fs.join(workdir, "result.json")).get("eval_step",
                                                                    config.total_steps))
  else:
    state, step = restore_state(run, workdir, step)
  evaluators = run.evaluators()
  results = evaluators.run(state, int(step), final=True,
                           out_dir=out_dir or fs.join(workdir, "evaluate"))
  return int(step), results


def restore_state(run, workdir: str, step: int | None = None) -> tuple[dict, int]:
  """(state, step) of a run's checkpoint `step` (default the latest) for `run`'s layout."""
  from skel_llm.train import checkpoint, state as state_lib
  # Only the model's rng variables are computed; the checkpoint is restored straight into the
  # abstract, sharded layout (no fresh state is built first).
  run.rng_vars = state_lib.init_rng_vars(run.make_model, run.config.trainable)
  ckpt = checkpoint.Checkpointer(fs.join(workdir, "checkpoints"), keep=10**6,
                                 every_steps=1, async_save=False)
  steps = ckpt.all_steps()
  if not steps:
    raise FileNotFoundError(f"{workdir}/checkpoints holds no checkpoint; train first or give "
                            f"--from_export")
  if step is not None and step not in steps:
    raise ValueError(f"--step {step}: {workdir}/checkpoints has steps {steps}")
  state, _, step = ckpt.restore(run.layout.abstract, step)
  ckpt.close()
  return state, int(step)


def group_table(group: str, workdirs: list[str]) -> str:
  """Each split's newest scalars and the mean +- std over the group's splits (markdown)."""
  from skel_llm.data import protocols
  from skel_llm.eval import metrics
  members = {p.name for p in protocols.group(group)}
  by_split: dict[str, dict[str, dict]] = {}
  for w in workdirs:
    with fs.path(fs.join(w, "result.json")).open() as f:
      result = json.load(f)
    proto = result.get("protocol")
    if proto not in members:
      raise ValueError(f"{w}: trained on protocol {proto!r}, not one of group {group}'s "
                       f"{sorted(members)}")
    if proto in by_split:
      raise ValueError(f"{w}: protocol {proto} given twice")
    by_split[proto] = result["evals"]
  missing = sorted(members - set(by_split))
  if missing:
    raise ValueError(f"group {group}: no run of {missing}")
  lines = ["| split | evaluator | metric | value |", "|---|---|---|---|"]
  first = next(iter(by_split.values()))
  for name, scalars in first.items():
    for key in scalars:
      if key in ("num_clips", "chance"):
        continue
      values = [by_split[p][name][key] for p in sorted(by_split)]
      for p, v in zip(sorted(by_split), values):
        lines.append(f"| {p} | {name} | {key} | {100 * v:.2f} |")
      mean, std = metrics.mean_std(values)
      lines.append(f"| **{group} mean +- std** | {name} | {key} | {100 * mean:.2f} +- "
                   f"{100 * std:.2f} |")
  return "\n".join(lines)
