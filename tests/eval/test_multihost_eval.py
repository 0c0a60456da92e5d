"""`python -m skel_llm.evaluate --distributed` on 2 CPU processes equals one process.

A smoke run (2 steps, LoRA, a (data 2, fsdp 2, tensor 2) mesh) trains in one process with 8
simulated devices. Its checkpoint is then evaluated by likelihood ranking (render, prefix,
candidates: the whole scoring path) twice: by one process with 8 devices, and by two
`--distributed` processes with 4 devices each on the same mesh, each reading only the rows of
every batch its devices hold. Every log-probability, the scalars and the confusion matrix must be
the same. (Greedy decoding on 2 processes is pinned by tests/train/test_multihost.py, whose
runs evaluate at the end.)
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 1800  # per job: generous for a loaded 2-core machine; a hang still fails
COMMON = ("--config=configs/distill.py:smoke", "--config.data.task=mqa",
          "--config.data.eval_task=mqa", "--config.mesh.data=2", "--config.mesh.fsdp=2",
          "--config.mesh.tensor=2", "--config.total_steps=2", "--config.model.lora_rank=4",
          "--config.evals.heldout.method=score")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices: int, cache) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _run(cmds_envs, logs):
  t0 = time.time()
  procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT) for (cmd, env), log in zip(cmds_envs, logs)]
  try:
    for p in procs:
      p.wait(timeout=max(1.0, TIMEOUT_S - (time.time() - t0)))
  except subprocess.TimeoutExpired:
    pass
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  codes = [p.returncode for p in procs]
  tails = "\n".join(f"--- {log.name} ---\n{log.read_text()[-2500:]}" for log in logs)
  assert codes == [0] * len(procs), f"exit codes {codes} after {time.time() - t0:.0f} s\n{tails}"


@pytest.mark.slow
def test_two_process_evaluation_equals_one_process(tmp_path):
  cache = tmp_path / "jax_cache"
  run = tmp_path / "run"
  _run([([sys.executable, "-m", "skel_llm.main", f"--workdir={run}", *COMMON,
          "--config.evals.heldout.num_clips=0"], _env(8, cache))], [tmp_path / "train.log"])
  single = [sys.executable, "-m", "skel_llm.evaluate", f"--workdir={run}",
            f"--out={tmp_path / 'one'}", *COMMON]
  port = _free_port()
  pair = []
  for i in range(2):
    env = _env(4, cache)
    env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
               JAX_PROCESS_ID=str(i))
    pair.append(([sys.executable, "-m", "skel_llm.evaluate", "--distributed",
                  f"--workdir={run}", f"--out={tmp_path / 'two'}", *COMMON], env))
  _run([(single, _env(8, cache)), *pair],
       [tmp_path / "one.log", tmp_path / "two.0.log", tmp_path / "two.1.log"])
  one = json.loads((tmp_path / "one" / "heldout.json").read_text())
  two = json.loads((tmp_path / "two" / "heldout.json").read_text())
  assert one["step"] == two["step"] == 2 and one["scalars"]["num_clips"] == 8
  assert one["scalars"] == two["scalars"] and one["confusion"] == two["confusion"]
  a = np.asarray([r["logp"] for r in one["records"]])
  b = np.asarray([r["logp"] for r in two["records"]])
  assert a.shape == (8, 36)
  np.testing.assert_array_equal(a, b)
  assert "| heldout |" in (tmp_path / "one.log").read_text()
