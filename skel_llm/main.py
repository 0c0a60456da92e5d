"""Entry point: `python -m skel_llm.main --config=configs/distill.py [--workdir=...]`
(`skel-llm-train` after `pip install -e .`).

Flags: `--config` (a `configs/*.py` file, `:preset` after it, `--config.key=value` overrides;
an unknown key is an error), `--workdir` (checkpoints, TensorBoard, PNG strips, results; a
run resumes from it; one this start created is removed again when the start fails on the
configuration), `--distributed` (call `jax.distributed.initialize()` first: multi-host
TPU pods and GPU clusters; see launch/).

Several processes on one CPU machine work the same way (tests/train/test_multihost.py), e.g.
two processes with 4 simulated devices each:
  XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_COORDINATOR_ADDRESS=127.0.0.1:1234 \
  JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=0 python -m skel_llm.main --distributed --config=...
(and JAX_PROCESS_ID=1 for the other); jax 0.10 runs cross-process CPU collectives over gloo by
default (`jax_cpu_collectives_implementation`), so nothing CPU-specific is set here.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from skel_llm.train import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training configuration file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default /tmp/skel_llm/<config name>).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False,
                                 "Initialise jax.distributed (multi-host); coordinator, process "
                                 "count and id come from the environment (see launch/).")


def main(argv, hooks=()):
  """Runs the config's stage; `hooks` go to `trainer.train_and_evaluate` (tests)."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if _DISTRIBUTED.value:
    cli.initialize_distributed()
  config = _CONFIG.value
  if config is None:
    raise app.UsageError("--config is required, e.g. --config=configs/distill.py")
  workdir = _WORKDIR.value
  if workdir is None:
    name = os.path.splitext(os.path.basename(flags.FLAGS["config"].config_filename))[0]
    workdir = os.path.join("/tmp/skel_llm", name)
  logging.set_verbosity(logging.WARNING)
  from skel_llm.train import progress, trainer
  progress.announce_start()
  from skel_llm import fs
  existed = fs.exists(workdir)  # local or gs://
  try:
    trainer.train_and_evaluate(config, workdir, hooks=hooks)
  except trainer.Preempted as e:
    print(f"[skel_llm] {e}", file=sys.stderr, flush=True)
    sys.exit(143)  # what a job killed by SIGTERM reports; the scheduler may rerun it
  except (ValueError, FileNotFoundError, KeyError, trainer.NonFiniteError) as e:
    if not existed:
      _remove_if_empty(workdir)
    print(f"[skel_llm] error: {e}", file=sys.stderr, flush=True)
    sys.exit(cli.EXIT_CODE)


def _remove_if_empty(folder: str) -> None:
  """Removes a workdir this run created when it holds no file (a start that failed validation).
  A gs:// workdir has no empty folders to remove."""
  if "://" in folder:
    return
  if any(files for _, _, files in os.walk(folder)):
    return
  for root, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
    os.rmdir(root)


def run():
  """Console entry point (`skel-llm-train`, pyproject.toml) and `python -m skel_llm.main`."""
  # One line naming the flag for a config mistake, instead of absl's traceback.
  cli.run_app(main)


if __name__ == "__main__":
  run()
