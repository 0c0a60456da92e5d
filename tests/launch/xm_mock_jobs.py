"""Run in the launcher's environment by tests/launch/test_xm_launch.py: launches a plan (JSON
on argv[1]) into xmanager's MockExperiment and prints every launched job as JSON (one per
line): work unit id, name, executor type, requirements, accelerator, topology, args, env,
executable spec. The test asserts them from the main environment (which has no xmanager)."""

import asyncio
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "launch"))
import xm_jobs  # noqa: E402
from xmanager import xm_mock  # noqa: E402
from xmanager.xm import utils  # noqa: E402


def _describe(job, unit_id, spec):
  req = job.executor.requirements
  return {
      "unit": unit_id, "name": job.name, "executor": type(job.executor).__name__,
      "accelerator": req.accelerator.name if req.accelerator else None,
      "topology": req.topology.name if req.topology else None,
      "task_requirements": {k.name: v for k, v in req.task_requirements.items()},
      "tpu_capability": getattr(getattr(job.executor, "tpu_capability", None),
                                "tpu_runtime_version", None),
      "args": job.args.to_dict(), "argv": job.args.to_list(utils.ARG_ESCAPER), "spec": spec,
  }


def main():
  plan = xm_jobs.Plan(**json.loads(sys.argv[1]))
  experiment = xm_mock.MockExperiment()
  packaged = xm_jobs.packageable(plan)
  spec = packaged.executable_spec
  spec_desc = {"type": type(spec).__name__}
  for field in ("path", "base_image", "docker_instructions"):
    if hasattr(spec, field):
      spec_desc[field] = getattr(spec, field)
  if hasattr(spec, "entrypoint"):
    spec_desc["entrypoint"] = getattr(spec.entrypoint, "module_name", None)
  spec_desc["args"] = packaged.args.to_list(utils.ARG_ESCAPER)
  spec_desc["env_vars"] = dict(packaged.env_vars)
  order = []

  async def go():
    async with experiment:
      units = await xm_jobs.launch(experiment, plan)
      for u in units:
        order.append(u.work_unit_id)
  asyncio.run(go())
  units = list(experiment.work_units.values())
  assert len(units) == len(experiment.launched_jobs), (len(units), len(experiment.launched_jobs))
  for unit_id, job in zip(order, experiment.launched_jobs):
    print(json.dumps(_describe(job, unit_id, spec_desc)))


if __name__ == "__main__":
  main()
