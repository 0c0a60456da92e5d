"""Shared test fixtures: the ../shared data folder, 8 simulated CPU devices, deadlines for
subprocess jobs, JAX compilation caches, and the parallel run (pytest-xdist) that
`python -m pytest -q tests` is (pyproject.toml's addopts)."""

import collections
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# Tests simulate an 8-device host; must be set before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

# One persistent compilation cache for the whole run, before jax is imported: tests build
# the same small programs again and again (a fresh jit of the same step is traced and lowered
# anew, but its compiled code comes from the cache). Made by the first process (pytest, or
# the xdist controller), inherited by the workers through the environment, removed at its end.
# Measured: tests/render + tests/models on 2 workers, 322 s without it, 269 s with it (wall).
_CACHE_ENV = "SKEL_LLM_TEST_JAX_CACHE"
_OWN_CACHE = _CACHE_ENV not in os.environ and "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
  os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="skel_llm_tests_jax_cache_")
if _CACHE_ENV in os.environ:
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ[_CACHE_ENV])
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """Path to ../shared/data; skips the test when it is absent (e.g. outside CI)."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f"{SHARED_DATA} is absent: real sample files and reference renders live there")
  return SHARED_DATA


# Subprocess jobs get a deadline so that a hang fails the test instead of blocking CI. A deadline
# must not fail a correct job on a machine slower than the one it was measured on (issue 13: a
# 420 s deadline against 377 s measured failed on a busy 2-core machine), so each is the time
# the job needs on the 2-core development machine times TIME_FACTOR (default 5; the environment
# variable SKEL_LLM_TEST_TIME_FACTOR changes it), and a miss reports the elapsed time.
TIME_FACTOR = float(os.environ.get("SKEL_LLM_TEST_TIME_FACTOR", "5"))


class Deadline:
  """A job's deadline: `seconds` = `needs_s` (development machine) x TIME_FACTOR, from now."""

  def __init__(self, needs_s: float, what: str = "job"):
    self.needs_s, self.what = float(needs_s), what
    self.seconds = self.needs_s * TIME_FACTOR
    self.start = time.monotonic()

  def elapsed(self) -> float:
    return time.monotonic() - self.start

  def left(self) -> float:
    """Seconds left (at least 1: a `timeout=` argument must stay positive)."""
    return max(1.0, self.seconds - self.elapsed())

  def passed(self) -> bool:
    return self.elapsed() > self.seconds

  def __str__(self) -> str:
    return (f"{self.what}: {self.elapsed():.0f} s elapsed, deadline {self.seconds:.0f} s "
            f"({TIME_FACTOR:g} x the {self.needs_s:.0f} s it needs on the 2-core development "
            f"machine; SKEL_LLM_TEST_TIME_FACTOR raises it)")


@pytest.fixture(scope="session")
def deadline():
  """`deadline(needs_s, what)` -> a `Deadline` started now."""
  return Deadline


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory) -> pathlib.Path:
  """One persistent compilation cache for every `python -m skel_llm.main` job of the session:
  jobs with the same config and device count reuse each other's compiled programs."""
  return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture(scope="session")
def hf_helpers():
  """tests/train/test_hf_init.py as a module: its `_save_hf` writes a transformers InternVL
  folder of a config's shapes (tests/test_fs.py, tests/serving/test_engine_hf.py)."""
  import importlib.util
  spec = importlib.util.spec_from_file_location("hf_init_helpers",
                                                REPO / "tests" / "train" / "test_hf_init.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope="session")
def heldout_run(tmp_path_factory):
  """(config, workdir, result) of tests/configs/heldout_mqa.py trained once per session on one
  device (~2 min on 2 CPU cores): a tiny model that recognises held-out synthetic clips of 4
  classes, with its checkpoints, evaluation files and exports. Its users are in the xdist
  group "heldout_run", so that one worker trains it (pytest_collection_modifyitems checks)."""
  import jax

  from skel_llm.train import defaults, trainer
  workdir = tmp_path_factory.mktemp("heldout")
  config = defaults.load_config(REPO / "tests" / "configs" / "heldout_mqa.py")
  result = trainer.train_and_evaluate(config, str(workdir), devices=jax.devices()[:1])
  return config, workdir, result


# A Cloud Storage emulator on 127.0.0.1 for the gs:// tests (tests/test_fs.py, the predictor's):
# gcsfs and google-cloud-storage find it through STORAGE_EMULATOR_HOST, tensorstore through
# TENSORSTORE_GCS_HTTP_URL.
GCS_BUCKET = "skel-llm-test"


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs():
  """The GCS emulator's environment, one emulator per session (tests/gcs_emulator.py, bucket
  GCS_BUCKET), also set in os.environ from its first use to the end of the session."""
  port = _free_port()
  proc = subprocess.Popen(
      [sys.executable, str(REPO / "tests" / "gcs_emulator.py"), f"--port={port}",
       f"--bucket={GCS_BUCKET}"],
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


@pytest.fixture(scope="session")
def gs_root(gcs) -> str:
  """`gs://<GCS_BUCKET>` on the session's emulator."""
  return f"gs://{GCS_BUCKET}"


# The fuzz suites' tally (tests/skeleton/test_fuzz.py, tests/data_prep/test_manual_corruption.py):
# cases per parser or builder and their outcomes, printed after the run.
_TALLY = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def fuzz_tally(request) -> dict:
  """{parser: Counter(cases, error, valid)} and {'<parser> valid by kind': Counter}."""
  return request.config.stash.setdefault(_TALLY, {})


def pytest_sessionfinish(session):
  """An xdist worker sends its tally to the controller (`workeroutput`)."""
  if hasattr(session.config, "workeroutput"):
    tally = session.config.stash.get(_TALLY, {})
    session.config.workeroutput["fuzz_tally"] = {k: dict(v) for k, v in tally.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
  """The controller adds each worker's tally to its own."""
  tally = node.config.stash.setdefault(_TALLY, {})
  for k, v in getattr(node, "workeroutput", {}).get("fuzz_tally", {}).items():
    tally.setdefault(k, collections.Counter()).update(v)


def pytest_unconfigure(config):
  if _OWN_CACHE and not hasattr(config, "workeroutput"):
    shutil.rmtree(os.environ[_CACHE_ENV], ignore_errors=True)


# The parallel run. `-n auto` is at most 4 workers and one per 6 GiB of memory (a worker with
# the heldout run, the torch reference models and 8 simulated devices peaks at a few GiB):
# 2 on the 2-core, 24 GiB development machine and CI. Each test file runs whole on one worker
# (its module fixtures are built once), files marked `pytest.mark.xdist_group(name)` together
# (they share a session fixture, e.g. `heldout_run`), and the files that take minutes start
# first so that no worker is left alone with one at the end (durations measured on 2 cores;
# a file missing from this list only costs balance).
MAX_WORKERS, GIB_PER_WORKER = 4, 6
FIRST = ("heldout_run", "tests/train/test_multihost.py", "tests/test_stages.py",
         "tests/test_colabs.py", "tests/test_fs.py", "tests/teachers/test_openai_serve.py",
         "tests/train/test_render_ablations.py", "tests/launch/test_xm_launch.py",
         "tests/train/test_lifecycle.py", "tests/train/test_dropout.py",
         "tests/eval/test_multihost_eval.py", "tests/models/test_scan.py",
         "tests/train/test_state.py", "tests/render/test_renderer.py")


def pytest_collection_modifyitems(config, items):
  for item in items:
    groups = [m.args[0] for m in item.iter_markers("xdist_group")]
    if "heldout_run" in getattr(item, "fixturenames", ()) and "heldout_run" not in groups:
      raise pytest.UsageError(f"{item.nodeid} uses the heldout_run fixture: mark its module "
                              "pytestmark = pytest.mark.xdist_group(\"heldout_run\")")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
  mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  return max(1, min(MAX_WORKERS, os.cpu_count() or 1, int(mem_gib // GIB_PER_WORKER)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  from xdist.scheduler import LoadScopeScheduling

  class FileOrGroupScheduling(LoadScopeScheduling):
    """Scopes: the xdist_group of a marked test (`--dist loadgroup` appends `@name` to its
    id), else its file; FIRST's scopes are queued before the rest."""

    def _split_scope(self, nodeid: str) -> str:
      if nodeid.rfind("@") > nodeid.rfind("]"):
        return nodeid.rsplit("@", 1)[1]
      return nodeid.split("::", 1)[0]

    def _assign_work_unit(self, node):
      # The queue is whole when the first unit is handed out (LoadScopeScheduling.schedule).
      if not getattr(self, "_first_queued", False):
        for scope in reversed(FIRST):
          if scope in self.workqueue:
            self.workqueue.move_to_end(scope, last=False)
        self._first_queued = True
      super()._assign_work_unit(node)

  return FileOrGroupScheduling(config, log)


def pytest_terminal_summary(terminalreporter, config):
  tally = config.stash.get(_TALLY, None)
  if not tally:
    return
  write = terminalreporter.write_line
  terminalreporter.section("skeleton fuzz cases")
  write(f"{'parser or builder':24s} {'cases':>6s} {'error':>6s} {'valid':>6s}  valid files by mutation kind")
  for name in sorted(k for k in tally if not k.endswith(" valid by kind")):
    c = tally[name]
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(tally[f"{name} valid by kind"].items()))
    write(f"{name:24s} {c['cases']:6d} {c['error']:6d} {c['valid']:6d}  {kinds}")
  write(f"{'total':24s} {sum(tally[k]['cases'] for k in tally if 'by kind' not in k):6d}")
