r"""XManager launcher: one experiment for a config or for the four-stage chain.

Runs in the launcher's own environment (xmanager needs protobuf<7; the project has 7):
  python -m venv ~/.venvs/xm && ~/.venvs/xm/bin/pip install --no-deps -r launch/requirements.txt

This machine, the smoke preset (the job runs `--python`'s `python -m skel_llm.main`):
  ~/.venvs/xm/bin/python launch/xm_launch.py --config=configs/warmup.py --preset=smoke \
      --root=/tmp/xm_smoke --python=$(which python)
The four stages chained (stage k+1 gets --config.init_from=<stage k's workdir>) on Vertex AI
TPU v5p 2x2x1, the container built from this checkout with jax[tpu]:
  ~/.venvs/xm/bin/python launch/xm_launch.py --chain --preset=paper --root=gs://bucket/runs \
      --executor=vertex --accelerator=tpu_v5p --topology=2x2x1 \
      --image_tag=us-docker.pkg.dev/PROJECT/skel-llm/train:latest \
      --flag=data.data_dir=gs://bucket/tensorflow_datasets
A sweep (the config's `sweep(preset)`, one work unit each, workdirs ROOT/<stage>/<i>):
  ... --config=configs/warmup.py --sweep
GKE: --executor=gke (TPU or GPU as for vertex). Job construction: launch/xm_jobs.py.
"""

import asyncio
import os
import shutil
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xm_jobs  # noqa: E402  (launch/ is not a package)

_CONFIG = flags.DEFINE_string("config", None, "configs/<stage>.py (without --chain)")
_CHAIN = flags.DEFINE_bool("chain", False, "the four stages warmup, disc_ft, distill, refine")
_PRESET = flags.DEFINE_string("preset", "demo", "demo, paper or smoke")
_ROOT = flags.DEFINE_string("root", None, "experiment root: ROOT/<stage>[/<unit>] (or gs://)")
_EXECUTOR = flags.DEFINE_enum("executor", "local", xm_jobs.KINDS, "where the jobs run")
_ACCEL = flags.DEFINE_string("accelerator", "", f"one of {xm_jobs.TPUS + xm_jobs.GPUS}")
_TOPOLOGY = flags.DEFINE_string("topology", "", "TPU topology, e.g. 2x2x1")
_COUNT = flags.DEFINE_integer("accelerator_count", 0, "GPUs per job (default 1)")
_PYTHON = flags.DEFINE_string("python", "python", "local executor: the project's interpreter")
_IMAGE = flags.DEFINE_string("image_tag", "", "vertex/gke: registry tag to push the image to")
_SWEEP = flags.DEFINE_bool("sweep", False, "one work unit per entry of the config's sweep()")
_FLAG = flags.DEFINE_multi_string("flag", [], "key=value: --config.key=value for every job")
_NAME = flags.DEFINE_string("name", "skel_llm", "experiment title")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  if _CHAIN.value == bool(_CONFIG.value):
    raise app.UsageError("give exactly one of --config=configs/<stage>.py and --chain")
  if not _ROOT.value:
    raise app.UsageError("--root is required")
  configs = ([str(xm_jobs.REPO / "configs" / f"{s}.py") for s in xm_jobs.STAGES]
             if _CHAIN.value else [_CONFIG.value])
  extra = {}
  for f in _FLAG.value:
    if "=" not in f:
      raise app.UsageError(f"--flag={f}: expected key=value")
    k, v = f.split("=", 1)
    extra[k.removeprefix("config.")] = v
  python = shutil.which(_PYTHON.value)
  if _EXECUTOR.value == "local" and python is None:
    raise app.UsageError(f"--python={_PYTHON.value}: no such interpreter on this machine")
  try:
    plan = xm_jobs.Plan(configs=configs, preset=_PRESET.value, root=_ROOT.value,
                        kind=_EXECUTOR.value, accelerator=_ACCEL.value, topology=_TOPOLOGY.value,
                        accelerator_count=_COUNT.value, python=python or _PYTHON.value,
                        image_tag=_IMAGE.value, flags=extra, use_sweep=_SWEEP.value)
    xm_jobs.work_units(plan)  # the sweep and its keys, checked before anything is packaged
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  from xmanager import xm, xm_local

  async def go():
    async with xm_local.create_experiment(experiment_title=_NAME.value) as experiment:
      await xm_jobs.launch(experiment, plan)
  try:
    asyncio.run(go())
  except xm.ExperimentUnitFailedError as e:  # a chain stops at the stage that failed
    print(f"[xm_launch] a job failed: {e}", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
