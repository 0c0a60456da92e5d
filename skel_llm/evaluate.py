"""Evaluate a run: `python -m skel_llm.evaluate --config=configs/distill.py --workdir=RUN`.

Restores the latest checkpoint of RUN (or `--step`), or with `--from_export` the run's exports
(`export/draction.safetensors` + `export/internvl_merged`, the released formats), runs the
config's evaluators (`config.evals`; override with `--config.evals.<name>.<option>=...`),
writes `RUN/evaluate/<name>.json` and `RUN/evaluate/<name>/step<N>.json` (+ PNGs), and prints
a markdown table. With the run's own config, the numbers equal the run's last evaluation
(`RUN/eval/`) bitwise: the same clips, frames and compiled programs.

Several runs of one protocol group (SMIE's three random splits, each trained on its own
seen classes): `--group=ntu60_smie --workdir=RUN1,RUN2,RUN3` reads each run's newest
evaluation files and prints every split and the mean +- std.

Flags `--distributed` (multi-host, as `skel_llm.main`) and `--out` (another output folder).
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's configuration file.",
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run folder (comma-separated with --group).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_FROM_EXPORT = flags.DEFINE_bool("from_export", False,
                                 "Evaluate the run's exports instead of a checkpoint.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default RUN/evaluate).")
_GROUP = flags.DEFINE_string("group", None, "Summarise a protocol group over several runs.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Initialise jax.distributed first.")


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
  state = run.init_state()
  if from_export:
    from skel_llm.train import build
    state = build.load_init_from(run, state, config.init_from)
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required")
  try:
    if _GROUP.value:
      print(group_table(_GROUP.value, _WORKDIR.value.split(",")))
      return
    config = _CONFIG.value
    if config is None:
      raise app.UsageError("--config is required (the run's config file and preset)")
    import jax

    from skel_llm.train import cli
    if _DISTRIBUTED.value:
      cli.initialize_distributed()
    logging.set_verbosity(logging.WARNING)
    step, results = evaluate_run(config, _WORKDIR.value, step=_STEP.value,
                                 from_export=_FROM_EXPORT.value, out_dir=_OUT.value)
    if jax.process_index() == 0:
      from skel_llm.eval import registry
      print(f"step {step} of {_WORKDIR.value}" + (" (exports)" if _FROM_EXPORT.value else ""))
      print(registry.markdown_table(results), flush=True)
  except (ValueError, FileNotFoundError, KeyError) as e:
    print(f"[skel_llm] error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)


def run():
  """`python -m skel_llm.evaluate`: config mistakes are one line and exit 2, as in main."""
  from skel_llm.train import cli
  app.run(main, argv=cli.exit_on_bad_config_args(sys.argv), flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
