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
