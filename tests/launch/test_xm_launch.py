"""launch/xm_launch.py and launch/xm_jobs.py: the XManager jobs, checked in the launcher's own
environment (launch/requirements.txt, installed with --no-deps into a venv under
~/.cache/skel_llm, or SKEL_LLM_XM_VENV): xmanager needs protobuf<7, the project has 7.

Job construction is asserted against xmanager's MockExperiment (tests/launch/xm_mock_jobs.py
prints every launched job); one real `xm_local` Local run trains the smoke preset here.
"""

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
LOCK = REPO / "launch" / "requirements.txt"


@pytest.fixture(scope="session")
def xm_python() -> str:
  """The launcher venv's python, created from the lock file when missing."""
  digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
  venv = pathlib.Path(os.environ.get("SKEL_LLM_XM_VENV") or
                      pathlib.Path.home() / ".cache" / "skel_llm" / f"xm-venv-{digest}")
  python = venv / "bin" / "python"
  marker = venv / f"installed-{digest}"
  if not marker.exists():
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "-r", str(LOCK)],
                   check=True, timeout=900)
    marker.write_text(digest)
  return str(python)


def _jobs(xm_python, **plan):
  out = subprocess.run([xm_python, str(REPO / "tests" / "launch" / "xm_mock_jobs.py"),
                        json.dumps(plan)], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-3000:]
  return [json.loads(line) for line in out.stdout.splitlines()]


def _jax_pin():
  return re.search(r"^jax==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)


def test_lock_file_pins_every_package_and_xmanager():
  lines = [ln for ln in LOCK.read_text().splitlines() if ln and not ln.startswith("#")]
  assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==\S+", ln) for ln in lines), lines
  names = {ln.split("==")[0].lower().replace("_", "-") for ln in lines}
  assert {"xmanager", "ml-collections", "protobuf", "absl-py"} <= names
  assert "jax" not in names  # the launcher needs no jax


def test_local_job_runs_this_checkout_with_the_given_python(xm_python, tmp_path):
  [job] = _jobs(xm_python, configs=["configs/warmup.py"], preset="smoke", root=str(tmp_path),
                python="/opt/py/bin/python", flags={"total_steps": 3})
  assert job["executor"] == "Local" and job["accelerator"] is None
  assert job["spec"] == {"type": "Binary", "path": "/opt/py/bin/python",
                         "args": ["-m", "skel_llm.main"], "env_vars": {"PYTHONPATH": str(REPO)}}
  assert job["argv"] == [f"--config={REPO}/configs/warmup.py:smoke",
                         f"--workdir={tmp_path}/warmup", "--config.total_steps=3"]


def test_four_stage_chain_on_vertex_tpu(xm_python):
  stages = ["warmup", "disc_ft", "distill", "refine"]
  jobs = _jobs(xm_python, configs=[f"configs/{s}.py" for s in stages], preset="paper",
               root="gs://bucket/runs", kind="vertex", accelerator="tpu_v5p", topology="2x2x1",
               image_tag="us-docker.pkg.dev/p/skel-llm/train:1",
               flags={"data.data_dir": "gs://bucket/tfds"})
  assert [j["name"] for j in jobs] == stages
  assert [j["unit"] for j in jobs] == [1, 2, 3, 4]  # one work unit per stage, in order
  for k, (job, stage) in enumerate(zip(jobs, stages)):
    assert job["executor"] == "Vertex"
    assert (job["accelerator"], job["topology"]) == ("TPU_V5P", "2x2x1")
    assert job["task_requirements"] == {"TPU_V5P": 4}  # 2x2x1 = 4 chips
    want = [f"--config=/app/configs/{stage}.py:paper", f"--workdir=gs://bucket/runs/{stage}",
            "--distributed", "--config.data.data_dir=gs://bucket/tfds"]
    if k:  # stage k+1 starts from stage k's workdir
      want.append(f"--config.init_from=gs://bucket/runs/{stages[k - 1]}")
    assert job["argv"] == want
    spec = job["spec"]
    assert spec["type"] == "PythonContainer" and spec["entrypoint"] == "skel_llm.main"
    assert spec["path"] == str(REPO)
    assert (f'RUN pip install --no-cache-dir -r /app/requirements.txt "jax[tpu]=={_jax_pin()}"'
            in spec["docker_instructions"])


def test_sweep_on_gke_gpus_is_one_work_unit_per_point(xm_python):
  jobs = _jobs(xm_python, configs=["configs/warmup.py"], preset="smoke", root="/r", kind="gke",
               accelerator="h100", accelerator_count=8, use_sweep=True)
  # configs/warmup.py sweep(): the seed for demo and smoke.
  assert [(j["unit"], j["args"]["config.seed"], j["args"]["workdir"]) for j in jobs] == [
      (1, 0, "/r/warmup/0"), (2, 1, "/r/warmup/1")]
  for job in jobs:
    assert job["executor"] == "Kubernetes" and job["tpu_capability"] is None
    assert job["task_requirements"] == {"H100": 8.0} and "distributed" not in job["args"]
    assert any(f'"jax[cuda12]=={_jax_pin()}"' in i for i in job["spec"]["docker_instructions"])
  [tpu] = _jobs(xm_python, configs=["configs/warmup.py"], preset="paper", root="/r", kind="gke",
                accelerator="tpu_v5e", topology="2x4")
  assert tpu["tpu_capability"] and tpu["task_requirements"] == {"TPU_V5E": 8}
  assert json.loads(json.dumps(tpu["args"]))["distributed"] is True


def _launch(xm_python, *flags, home, env=None, timeout=120):
  env = dict(os.environ, HOME=str(home), XLA_FLAGS="", **(env or {}))
  return subprocess.run([xm_python, str(REPO / "launch" / "xm_launch.py"), *flags], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("flags, message", [
    (["--config=configs/refine.py", "--sweep", "--root=/r"], "defines no sweep"),
    (["--config=configs/warmup.py", "--executor=vertex", "--root=/r"], "give --accelerator"),
    (["--config=configs/warmup.py", "--executor=vertex", "--accelerator=tpu_v5p", "--root=/r"],
     "give --topology"),
    (["--config=configs/nope.py", "--root=/r"], "configs/nope.py does not exist"),
    (["--chain", "--config=configs/warmup.py", "--root=/r"], "exactly one of"),
])
def test_mistakes_are_named(xm_python, tmp_path, flags, message):
  out = _launch(xm_python, *flags, home=tmp_path)
  assert out.returncode != 0 and message in out.stderr, out.stderr[-2000:]


def test_real_local_run_of_the_smoke_preset(xm_python, tmp_path, jax_cache, deadline):
  """xm_local.Local runs `python -m skel_llm.main` here (no docker: a local binary job)."""
  limit = deadline(60, "an xm_local run of the smoke preset")
  out = _launch(xm_python, "--config=configs/warmup.py", "--preset=smoke",
                f"--root={tmp_path / 'runs'}", f"--python={sys.executable}",
                "--flag=total_steps=2", "--flag=evals.heldout.num_clips=0", home=tmp_path,
                env={"JAX_COMPILATION_CACHE_DIR": str(jax_cache),
                     "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}, timeout=limit.left())
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert "[warmup] [skel_llm] task mqa" in out.stdout + out.stderr
  workdir = tmp_path / "runs" / "warmup"
  result = json.loads((workdir / "result.json").read_text())
  assert result["eval_step"] == 2
  steps = [json.loads(line)["step"] for line in open(workdir / "data_order.jsonl")]
  assert steps == [1, 2]
  assert (tmp_path / ".xmanager" / "experiments.sqlite3").is_file()  # xm_local's record
