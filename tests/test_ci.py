"""Pins .ci/run: under CI=true a missing ../shared/data fails CI instead of skipping tests."""

import os
import pathlib
import shutil
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_ci_fails_without_the_sample_files(tmp_path):
  # A copy of the script in a checkout whose parent has no shared/data; it must stop before
  # installing or testing anything.
  (tmp_path / "repo" / ".ci").mkdir(parents=True)
  script = tmp_path / "repo" / ".ci" / "run"
  shutil.copy(REPO / ".ci" / "run", script)
  env = dict(os.environ, CI="true")
  out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                       timeout=60)
  assert out.returncode == 1
  assert out.stderr.strip() == (f".ci/run: CI=true but {tmp_path / 'shared' / 'data'} is missing: "
                                "the parity tests need the real sample files there")
  assert out.stdout == ""
  # With the folder present the check passes: the script goes on to pip, here a stand-in that
  # exits 7 at once, so reaching it shows the check let CI through.
  (tmp_path / "shared" / "data").mkdir(parents=True)
  fake_bin = tmp_path / "bin"
  fake_bin.mkdir()
  (fake_bin / "pip").write_text("#!/bin/sh\necho fake pip >&2\nexit 7\n")
  (fake_bin / "pip").chmod(0o755)
  env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"
  out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                       timeout=60)
  assert out.returncode == 7 and out.stderr.strip() == "fake pip"
