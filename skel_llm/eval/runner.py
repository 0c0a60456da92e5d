"""Evaluating a finished run (the library behind `python -m skel_llm.evaluate`).

`evaluate_run` restores a run's checkpoint (or its released-format exports) and runs the
config's evaluators; `group_table` summarises the runs of one protocol group.
"""

from __future__ import annotations

import json
import os


def evaluate_run(config, workdir: str, *, step: int | None = None, from_export: bool = False,
                 out_dir: str | None = None, devices=None) -> tuple[int, dict]:
  """(step evaluated, {evaluator: scalars}) of a run's checkpoint or exports."""
  from skel_llm.train import checkpoint, run as run_lib
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"--workdir {workdir} does not exist")
  if from_export:
    renderer = os.path.join(workdir, "export", "draction.safetensors")
    hf = os.path.join(workdir, "export", "internvl_merged")
    missing = [p for p in (renderer, hf) if not os.path.exists(p)]
    if missing:
      raise FileNotFoundError(f"--from_export: {missing} missing; the run must export both "
                              f"(config.export.renderer and config.export.merged_hf)")
    config.render.init = renderer
    config.init_from = "hf:" + hf
    config.model.lora_rank = 0  # the merged export holds the adapters folded in
  run = run_lib.Run(config, None, devices)
  if from_export:
    from skel_llm.train import build
    state = build.load_init_from(run, config.init_from)
    with open(os.path.join(workdir, "result.json")) as f:
      step = int(json.load(f).get("eval_step", config.total_steps))
  else:
    ckpt = checkpoint.Checkpointer(os.path.join(workdir, "checkpoints"), keep=10**6,
                                   every_steps=1, async_save=False)
    steps = ckpt.all_steps()
    if not steps:
      raise FileNotFoundError(f"{workdir}/checkpoints holds no checkpoint; train first or give "
                              f"--from_export")
    if step is not None and step not in steps:
      raise ValueError(f"--step {step}: {workdir}/checkpoints has steps {steps}")
    from skel_llm.train import state as state_lib
    run.rng_vars = state_lib.init_rng_vars(run.make_model, config.trainable)
    state, _, step = ckpt.restore(run.layout.abstract, step)
    ckpt.close()
  evaluators = run.evaluators()
  results = evaluators.run(state, int(step), final=True,
                           out_dir=out_dir or os.path.join(workdir, "evaluate"))
  return int(step), results


def group_table(group: str, workdirs: list[str]) -> str:
  """Each split's newest scalars and the mean +- std over the group's splits (markdown)."""
  from skel_llm.data import protocols
  from skel_llm.eval import metrics
  members = {p.name for p in protocols.group(group)}
  by_split: dict[str, dict[str, dict]] = {}
  for w in workdirs:
    with open(os.path.join(w, "result.json")) as f:
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
