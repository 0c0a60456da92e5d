"""launch/gcloud_tpu.sh: the gcloud commands it prints with --dry_run, and a real `run` against a
fake `gcloud` on PATH (two workers, one fails: the other is stopped, the status is kept)."""

import os
import pathlib
import shlex
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "launch" / "gcloud_tpu.sh"
JAX = next(ln.split("==")[1] for ln in (REPO / "requirements.txt").read_text().splitlines()
           if ln.startswith("jax=="))


def _sh(*args, env=None, cwd=None):
  return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                        env=env, cwd=cwd)


def test_dry_run_up_prints_every_command():
  out = _sh("up", "--dry_run", "--name=skel", "--zone=us-east5-a", "--type=v5p-16",
            "--project=proj", "--workers=2", "--", "--config=configs/distill.py:paper",
            "--workdir=gs://bucket/runs/distill")
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  where = ["--zone=us-east5-a", "--project=proj"]
  ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "skel", *where]
  main = ("cd ~/skel_llm && echo $$ > /tmp/skel_llm_main.pid && exec python -m skel_llm.main "
          "--distributed --config=configs/distill.py:paper --workdir=gs://bucket/runs/distill")
  want = [
      ["gcloud", "compute", "tpus", "tpu-vm", "create", "skel", *where,
       "--accelerator-type=v5p-16", "--version=v2-alpha-tpuv5"],
      ["git", "-C", str(REPO), "archive", "--format=tar.gz",
       "--output=/tmp/skel_llm_checkout_skel.tar.gz", "HEAD"],
      ["gcloud", "compute", "tpus", "tpu-vm", "scp", "/tmp/skel_llm_checkout_skel.tar.gz",
       "skel:skel_llm.tar.gz", *where, "--worker=all"],
      [*ssh, "--worker=all", "--command=rm -rf ~/skel_llm && mkdir -p ~/skel_llm && tar -xzf "
       "skel_llm.tar.gz -C ~/skel_llm && pip install -q -r ~/skel_llm/requirements.txt "
       f"'jax[tpu]=={JAX}'"],
      ["gcloud", "compute", "tpus", "tpu-vm", "describe", "skel", *where,
       "--format=value(networkEndpoints[].ipAddress)"],
      [*ssh, "--worker=0", f"--command={main}", ">", "tpu_logs/skel/worker-0.log", "2>&1", "&"],
      [*ssh, "--worker=1", f"--command={main}", ">", "tpu_logs/skel/worker-1.log", "2>&1", "&"],
      ["#", "on", "the", "first", "failure:", *ssh, "--worker=all",
       "--command=kill $(cat /tmp/skel_llm_main.pid) 2>/dev/null; true"],
  ]
  assert [shlex.split(ln) for ln in lines] == want


def test_dry_run_queued_resource_create_and_delete():
  out = _sh("create", "--dry_run", "--queued", "--spot", "--name=q", "--zone=z", "--type=v6e-8")
  assert [shlex.split(ln) for ln in out.stdout.splitlines()] == [
      ["gcloud", "compute", "tpus", "queued-resources", "create", "q", "--zone=z",
       "--node-id=q", "--accelerator-type=v6e-8", "--runtime-version=v2-alpha-tpuv5", "--spot"],
      ["gcloud", "compute", "tpus", "queued-resources", "describe", "q", "--zone=z",
       "--format=value(state.state)"]]
  out = _sh("delete", "--dry_run", "--queued", "--name=q", "--zone=z")
  assert shlex.split(out.stdout) == ["gcloud", "compute", "tpus", "queued-resources", "delete",
                                     "q", "--zone=z", "--force", "--quiet"]
  out = _sh("delete", "--dry_run", "--name=t", "--zone=z")
  assert shlex.split(out.stdout) == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "t",
                                     "--zone=z", "--quiet"]


@pytest.mark.parametrize("args, message", [
    (["start", "--name=a", "--zone=z"], "unknown command 'start'"),
    (["create", "--zone=z"], "--name=NAME is required"),
    (["run", "--name=a", "--zone=z"], "run needs the skel_llm.main flags after --"),
    (["create", "--name=a", "--zone=z", "--config=x"], "unknown option '--config=x'"),
    (["run", "--dry_run", "--name=a", "--zone=z", "--workers=0", "--", "--x"], "--workers=0"),
])
def test_mistakes_are_named(args, message):
  out = _sh(*args)
  assert out.returncode == 2 and message in out.stderr, out.stderr


_FAKE_GCLOUD = r"""#!/usr/bin/env bash
# A stand-in for gcloud: records its arguments; worker 1 fails, worker 0 runs until stopped.
echo "$*" >> "$CALLS"
case "$*" in
  *"tpu-vm describe"*) echo "10.0.0.1;10.0.0.2" ;;
  *"--worker=all"*kill*) echo "remote stop" ;;
  *"--worker=1"*) echo "worker 1: loading"; sleep 0.5; echo "worker 1: bad data"; exit 3 ;;
  *"--worker=0"*) trap 'kill $!; echo "worker 0: stopped"; exit 143' TERM
                  echo "worker 0: training"; sleep 60 & wait; echo "worker 0: done" ;;
esac
"""


def test_run_stops_all_workers_when_one_fails(tmp_path):
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "gcloud").write_text(_FAKE_GCLOUD)
  (bin_dir / "gcloud").chmod(0o755)
  calls = tmp_path / "calls.log"
  env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CALLS=str(calls))
  out = _sh("run", "--name=skel", "--zone=z", f"--logs={tmp_path / 'logs'}", "--",
            "--config=configs/distill.py:paper", "--workdir=gs://b/r", env=env, cwd=tmp_path)
  assert out.returncode == 3, out.stderr  # the failing worker's status
  assert "a worker exited with status 3; stopping the others" in out.stderr
  logs = tmp_path / "logs"
  assert (logs / "worker-1.log").read_text() == "worker 1: loading\nworker 1: bad data\n"
  assert (logs / "worker-0.log").read_text() == "worker 0: training\nworker 0: stopped\n"
  recorded = calls.read_text().splitlines()
  assert any("--worker=all" in c and "kill $(cat /tmp/skel_llm_main.pid)" in c
             for c in recorded), recorded
  assert sum("--distributed --config=configs/distill.py:paper" in c for c in recorded) == 2
