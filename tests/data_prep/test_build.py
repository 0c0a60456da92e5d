"""`python -m data_prep.build` runs TFDS's `build` command line without TensorFlow."""

import os

import tensorflow_datasets as tfds

from skel_llm import synthetic


def test_build_command_line_without_tensorflow(tmp_path, deadline):
  """`python -m data_prep.build` runs TFDS's own `build` command on a builder folder."""
  import subprocess
  import sys

  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  out = subprocess.run([sys.executable, "-m", "data_prep.build", "data_prep/synthetic_actions",
                        "--config=smoke", f"--data_dir={tmp_path}"], cwd=repo,
                       capture_output=True, text=True,
                       timeout=deadline(300, "data_prep.build").seconds)
  assert out.returncode == 0, out.stderr[-3000:]
  ds = tfds.data_source("synthetic_actions/smoke", data_dir=os.fspath(tmp_path), split="test")
  labels = sorted(int(ds[i]["label"]) for i in range(len(ds)))
  assert labels == list(range(len(synthetic.CLASS_NAMES)))  # one test clip per class
