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

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from skel_llm.eval import runner

_CONFIG = config_flags.DEFINE_config_file("config", None, "The run's configuration file.",
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string("workdir", None, "The run folder (comma-separated with --group).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_FROM_EXPORT = flags.DEFINE_bool("from_export", False,
                                 "Evaluate the run's exports instead of a checkpoint.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default RUN/evaluate).")
_GROUP = flags.DEFINE_string("group", None, "Summarise a protocol group over several runs.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Initialise jax.distributed first.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required")
  try:
    if _GROUP.value:
      print(runner.group_table(_GROUP.value, _WORKDIR.value.split(",")))
      return
    config = _CONFIG.value
    if config is None:
      raise app.UsageError("--config is required (the run's config file and preset)")
    import jax

    from skel_llm.train import cli
    if _DISTRIBUTED.value:
      cli.initialize_distributed()
    logging.set_verbosity(logging.WARNING)
    step, results = runner.evaluate_run(config, _WORKDIR.value, step=_STEP.value,
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
  cli.run_app(main)


if __name__ == "__main__":
  run()
