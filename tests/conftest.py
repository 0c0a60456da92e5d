"""Shared test fixtures: the ../shared data folder and 8 simulated CPU devices."""

import os
import pathlib

# Tests simulate an 8-device host; must be set before jax is imported anywhere.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

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


# The fuzz suites' tally (tests/skeleton/test_fuzz.py, tests/data_prep/test_manual_corruption.py):
# cases per parser or builder and their outcomes, printed after the run.
_TALLY = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def fuzz_tally(request) -> dict:
  """{parser: Counter(cases, error, valid)} and {'<parser> valid by kind': Counter}."""
  return request.config.stash.setdefault(_TALLY, {})


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
