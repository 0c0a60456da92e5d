"""The XManager jobs of launch/xm_launch.py: executors, requirements, args, the four-stage chain
and config sweeps. Runs in the launcher's own environment (launch/requirements.txt: xmanager,
ml-collections; no jax), so it imports only the configs' light modules.

- `executor(kind, ...)`: `local` (this machine, `python -m skel_llm.main`), `vertex` (Vertex AI,
  TPU or GPU `xm.JobRequirements`) or `gke` (Kubernetes, TPU or GPU);
- `packageable(kind, ...)`: for `local` the interpreter given (`--python`) running the module
  from this checkout; for `vertex`/`gke` a container built from the checkout with
  `jax[tpu]` or `jax[cuda12]` at the jax version requirements.txt pins;
- `stage_args(...)`: the flags of one `python -m skel_llm.main` job;
- `sweep(config_file, arg)`: the config module's `sweep(arg)` (a list of {config key: value}
  overrides, one work unit each; big_vision's `get_hyper` in list form), or one empty override;
- `launch(experiment, plan)`: adds the work units; a chain adds stage k+1 after stage k has
  completed, with `--config.init_from=<stage k's workdir>`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import re
import sys
from typing import Any, Sequence

REPO = pathlib.Path(__file__).resolve().parents[1]
STAGES = ("warmup", "disc_ft", "distill", "refine")
KINDS = ("local", "vertex", "gke")
TPUS = ("tpu_v4", "tpu_v5e", "tpu_v5p", "tpu_v6e")
GPUS = ("a100", "a100_80gib", "h100", "h200", "l4_24th", "v100", "t4")


@dataclasses.dataclass
class Plan:
  """What to launch: `stages` config files in order (one file: no chain), their preset, the
  experiment root (stage workdirs `root/<stage>[/<work unit>]`) and flags for every job."""
  configs: Sequence[str]
  preset: str
  root: str
  kind: str = "local"
  accelerator: str = ""
  topology: str = ""
  accelerator_count: int = 0
  python: str = sys.executable
  image_tag: str = ""
  flags: dict[str, Any] = dataclasses.field(default_factory=dict)
  use_sweep: bool = False

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"--executor {self.kind!r}: expected one of {KINDS}")
    if self.accelerator and self.accelerator not in TPUS + GPUS:
      raise ValueError(f"--accelerator {self.accelerator!r}: expected one of {TPUS + GPUS}")
    if self.accelerator in TPUS and not self.topology:
      raise ValueError(f"--accelerator {self.accelerator}: give --topology (e.g. 2x2 or 2x2x1)")
    if self.kind != "local" and not self.accelerator:
      raise ValueError(f"--executor {self.kind}: give --accelerator (one of {TPUS + GPUS})")
    for c in self.configs:
      if not pathlib.Path(c).is_file():
        raise ValueError(f"config file {c} does not exist")


def load_config_module(config_file: str):
  """The module of a `configs/*.py` file (its get_config and optional sweep)."""
  sys.path.insert(0, str(REPO)) if str(REPO) not in sys.path else None
  spec = importlib.util.spec_from_file_location(
      "skel_llm_launch_" + pathlib.Path(config_file).stem, config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def sweep(config_file: str, arg: str) -> list[dict[str, Any]]:
  """The config's `sweep(arg)`: a non-empty list of {config key: value}; checks every key."""
  module = load_config_module(config_file)
  if not hasattr(module, "sweep"):
    raise ValueError(f"{config_file} defines no sweep(arg); drop --sweep or add one")
  points = list(module.sweep(arg))
  if not points:
    raise ValueError(f"{config_file}: sweep({arg!r}) returned no work units")
  config = module.get_config(arg)
  for i, point in enumerate(points):
    for key in point:
      node = config
      for part in key.split("."):
        if part not in node:
          raise ValueError(f"{config_file}: sweep({arg!r})[{i}] sets {key!r}, which is not a "
                           f"key of the config")
        node = node[part]
  return points


def requirements(plan: Plan):
  """`xm.JobRequirements` of a job: a TPU topology or a GPU count (none for CPU-only)."""
  from xmanager import xm
  if not plan.accelerator:
    return xm.JobRequirements()
  if plan.accelerator in TPUS:
    return xm.JobRequirements(**{plan.accelerator: plan.topology})
  return xm.JobRequirements(**{plan.accelerator: plan.accelerator_count or 1})


def executor(plan: Plan):
  from xmanager import xm_local
  if plan.kind == "local":
    return xm_local.Local(requirements=requirements(plan), experimental_stream_output=True)
  if plan.kind == "vertex":
    return xm_local.Vertex(requirements=requirements(plan))
  tpu = None
  if plan.accelerator in TPUS:
    tpu = xm_local.TpuCapability(tpu_runtime_version="tpu-ubuntu2204-base")
  return xm_local.Kubernetes(requirements=requirements(plan), tpu_capability=tpu)


def jax_version() -> str:
  """The jax pin of requirements.txt (the container installs the same)."""
  text = (REPO / "requirements.txt").read_text()
  match = re.search(r"^jax==(\S+)$", text, re.M)
  if not match:
    raise ValueError(f"{REPO / 'requirements.txt'}: no 'jax==VERSION' line")
  return match.group(1)


def docker_instructions(plan: Plan) -> list[str]:
  """The container: the checkout, its requirements and jax for the accelerator."""
  extra = "tpu" if plan.accelerator in TPUS else "cuda12"
  return [
      f"COPY {REPO.name}/requirements.txt /app/requirements.txt",
      f'RUN pip install --no-cache-dir -r /app/requirements.txt "jax[{extra}]=={jax_version()}"',
      f"COPY {REPO.name}/ /app",
      "WORKDIR /app",
      "ENV PYTHONPATH=/app",
  ]


def packageable(plan: Plan):
  from xmanager import xm, xm_local
  if plan.kind == "local":
    return xm.binary(xm_local.Local.Spec(), path=plan.python, args=["-m", "skel_llm.main"],
                     env_vars={"PYTHONPATH": str(REPO)})
  spec = (xm_local.Vertex.Spec(push_image_tag=plan.image_tag or None) if plan.kind == "vertex"
          else xm_local.Kubernetes.Spec(push_image_tag=plan.image_tag or None))
  return xm.python_container(spec, entrypoint=xm.ModuleName("skel_llm.main"), path=str(REPO),
                             base_image="python:3.11-slim",
                             docker_instructions=docker_instructions(plan))


def config_path(plan: Plan, config_file: str) -> str:
  """The config file as the job sees it: this checkout's path locally, /app/... in the image."""
  rel = pathlib.Path(config_file).resolve().relative_to(REPO)
  return str(REPO / rel) if plan.kind == "local" else f"/app/{rel}"


def stage_args(plan: Plan, config_file: str, workdir: str, overrides: dict[str, Any],
               init_from: str | None) -> dict[str, Any]:
  """The flags of one `python -m skel_llm.main` job (a dict: `--key=value` each)."""
  args: dict[str, Any] = {"config": f"{config_path(plan, config_file)}:{plan.preset}",
                          "workdir": workdir}
  if plan.kind != "local" and plan.accelerator in TPUS:
    args["distributed"] = True  # every host of the slice runs the job; jax finds the others
  for key, value in {**plan.flags, **overrides}.items():
    args[f"config.{key}"] = value
  if init_from is not None:
    args["config.init_from"] = init_from  # the chain always wins
  return args


def _workdir(root: str, stage: str, unit: int | None) -> str:
  base = root.rstrip("/") + "/" + stage
  return base if unit is None else f"{base}/{unit}"


def work_units(plan: Plan) -> list[list[tuple[str, dict[str, Any]]]]:
  """[[(stage name, args) for each stage of the chain] for each sweep point]."""
  points = sweep(plan.configs[0], plan.preset) if plan.use_sweep else [{}]
  units = []
  for i, point in enumerate(points):
    unit = i if len(points) > 1 else None
    chain, previous = [], None
    for config_file in plan.configs:
      stage = pathlib.Path(config_file).stem
      workdir = _workdir(plan.root, stage, unit)
      chain.append((stage, stage_args(plan, config_file, workdir, point, previous)))
      previous = workdir if len(plan.configs) > 1 else None
    units.append(chain)
  return units


async def launch(experiment, plan: Plan) -> list[Any]:
  """Adds every work unit to `experiment`; returns them. Sweep points run side by side; the
  stages of a chain one after another (stage k+1 is added once stage k completed)."""
  import asyncio

  from xmanager import xm
  units = work_units(plan)  # checks the sweep before packaging
  [executable] = experiment.package([packageable(plan)])
  launched = []

  async def run_chain(chain):
    for stage, args in chain:
      job = xm.Job(executable, executor(plan), args=args, name=stage)
      unit = await experiment.add(job)
      launched.append(unit)
      await unit.wait_until_complete()

  await asyncio.gather(*(run_chain(chain) for chain in units))
  return launched
