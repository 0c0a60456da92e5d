"""What the before/after benchmarks share: the package of an earlier commit, extracted beside
the working tree so that both run in fresh processes of one benchmark run, and a child
process that the OOM killer takes first on a machine shared with other jobs.

Used by benchmarks/hf_init_rss.py and benchmarks/tfds_startup.py (`--baseline=<rev>`).
"""

from __future__ import annotations

import pathlib
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[1]


def extract(rev: str, dest: pathlib.Path) -> pathlib.Path:
  """`skel_llm/` as it was at `rev` (`git archive`), under the new folder `dest`."""
  dest.mkdir()
  archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "skel_llm"],
                           capture_output=True, check=True).stdout
  subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
  return dest


def first_to_go() -> None:
  """On a machine shared with other jobs, the kernel's OOM killer takes this process first."""
  try:
    with open("/proc/self/oom_score_adj", "w") as f:
      f.write("1000")
  except OSError:
    pass
