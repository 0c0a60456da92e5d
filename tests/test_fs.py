"""skel_llm/fs.py and `--workdir=gs://...` against a GCS emulator on 127.0.0.1.

The emulator (`gcp-storage-emulator`, requirements-test.txt, started by tests/gcs_emulator.py,
which adds the generation header tensorstore needs) serves the JSON API that gcsfs
(behind etils.epath), google-cloud-storage (behind tensorboardX's gs:// writer) and
tensorstore (behind orbax's array writes) speak: the first two find it through
STORAGE_EMULATOR_HOST, tensorstore through TENSORSTORE_GCS_HTTP_URL.
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

from skel_llm import fs

REPO = pathlib.Path(__file__).resolve().parents[1]
BUCKET = "skel-llm-test"


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def gcs():
  """The emulator's environment (also set in os.environ while the module's tests run)."""
  port = _free_port()
  proc = subprocess.Popen(
      [sys.executable, str(REPO / "tests" / "gcs_emulator.py"), f"--port={port}",
       f"--bucket={BUCKET}"],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  url = f"http://127.0.0.1:{port}"
  env = {"STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url,
         "GOOGLE_CLOUD_PROJECT": "test"}
  t0 = time.monotonic()
  while True:
    try:
      socket.create_connection(("127.0.0.1", port), timeout=1).close()
      break
    except OSError:
      if proc.poll() is not None or time.monotonic() - t0 > 60:
        proc.kill()
        raise RuntimeError(f"the GCS emulator did not start on port {port}")
      time.sleep(0.2)
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  yield env
  for k, v in saved.items():
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
  proc.kill()
  proc.wait()


def _gs(*parts):
  return "/".join([f"gs://{BUCKET}", *parts])


def test_files_round_trip_through_the_emulator(gcs, tmp_path):
  root = _gs("helpers")
  fs.write_json(fs.join(root, "a", "r.json"), {"x": 1})
  assert fs.read_json(_gs("helpers", "a", "r.json")) == {"x": 1}
  assert fs.listdir(root) == ["a"] and fs.isdir(fs.join(root, "a"))
  assert not fs.exists(fs.join(root, "a", "r.json.tmp"))  # written in place: uploads are atomic
  # No append on object storage: the lines already there are kept, the new ones added.
  order = fs.join(root, "order.jsonl")
  with fs.Appender(order) as f:
    f.write("1\n")
    f.write("2\n")
  with fs.Appender(order) as f:
    f.write("3\n")
    f.sync()
    assert fs.read_text(order) == "1\n2\n3\n"
  image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
  fs.save_image(fs.join(root, "i.png"), image)
  from PIL import Image
  with fs.local_copy(fs.join(root, "i.png")) as local:
    np.testing.assert_array_equal(np.asarray(Image.open(local)), image)
  with fs.local_dir(fs.join(root, "up")) as local:
    pathlib.Path(local, "sub").mkdir()
    pathlib.Path(local, "sub", "t.txt").write_text("hi")
  assert fs.read_text(fs.join(root, "up", "sub", "t.txt")) == "hi"
  with fs.local_copy(fs.join(root, "up")) as local:
    assert pathlib.Path(local, "sub", "t.txt").read_text() == "hi"
  # Nothing leaked to a local folder named "gs:".
  assert not pathlib.Path("gs:").exists()


def _train(workdir, steps, env, cwd, cache, timeout):
  env = dict(os.environ, **env, XLA_FLAGS="", JAX_COMPILATION_CACHE_DIR=str(cache),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  return subprocess.run(
      [sys.executable, "-m", "skel_llm.main", f"--config={REPO}/configs/warmup.py:smoke",
       f"--workdir={workdir}", f"--config.total_steps={steps}",
       "--config.evals.heldout.num_clips=4", "--config.export.renderer=True"],
      cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_training_in_a_gs_workdir_resumes_from_its_checkpoint(gcs, tmp_path, deadline,
                                                            jax_cache):
  """A smoke run of 10 steps in gs://, then the same run to 15: it resumes at step 10 from the
  gs:// checkpoint, and every file of the run is in the bucket, none on the local disk."""
  workdir = _gs("runs", "warmup")
  cwd = tmp_path / "cwd"
  cwd.mkdir()
  limit = deadline(120, "two smoke runs in a gs:// workdir")
  first = _train(workdir, 10, gcs, cwd, jax_cache, limit.left())
  assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
  assert "steps 0 -> 10" in first.stdout
  second = _train(workdir, 15, gcs, cwd, jax_cache, limit.left())
  assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
  assert "steps 10 -> 15" in second.stdout, second.stdout[-2000:]
  assert list(cwd.iterdir()) == []  # nothing written under a local "gs:" folder

  kept = sorted(int(s) for s in fs.listdir(fs.join(workdir, "checkpoints")))
  assert kept[-2:] == [10, 15], kept  # the resumed-from step and the last (keep-N policy)
  # The arrays were written by tensorstore into the bucket (orbax's OCDBT store).
  state = fs.listdir(fs.join(workdir, "checkpoints", "15", "state"))
  assert any(n.startswith("ocdbt") or n == "d" for n in state), state
  result = fs.read_json(fs.join(workdir, "result.json"))
  assert result["eval_step"] == 15 and "heldout" in result["evals"]
  assert fs.read_json(fs.join(workdir, "eval", "heldout.json"))["step"] == 15
  steps = [json.loads(line)["step"]
           for line in fs.read_text(fs.join(workdir, "data_order.jsonl")).splitlines()]
  assert steps == list(range(1, 16))
  for name in ("frames_start.png", "frames_end.png", "eval/curves.png",
               "export/draction.safetensors", "export/draction.json"):
    assert fs.isfile(fs.join(workdir, *name.split("/"))), name
  events = fs.listdir(fs.join(workdir, "tensorboard"))
  assert len(events) == 2 and all(n.startswith("events.out.tfevents") for n in events), events
  # The event files hold the logged scalars (read back with TensorBoard's own reader).
  from tensorboard.backend.event_processing import event_accumulator
  with fs.local_copy(fs.join(workdir, "tensorboard")) as local:
    acc = event_accumulator.EventAccumulator(local)
    acc.Reload()
    logged = sorted(e.step for e in acc.Scalars("loss"))
  assert logged == [5, 10, 15], logged
