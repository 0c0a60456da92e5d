"""NTU `.skeleton` parsing throughput: `skel_llm.skeleton.parse_ntu` vs a plain Python parser.

    python benchmarks/parse.py --data FOLDER [--repeats 15]

FOLDER holds NTU RGB+D `.skeleton` files (the dataset's download page:
rose1.ntu.edu.sg/dataset/actionRecognition); the default is the development machine's
sample folder, `../shared/data/real/ntu_skeleton` beside the repository.

The baseline, written here, is the usual line-by-line reader (as in the NTU
`txt2npy.py` script and most preprocessing code): `readlines()`, then per
joint line `split()` and `float()` of each field, with the same checks that
ours makes (field counts, finiteness) and the same output (positions of the
first two bodies per frame, float32[T, 2, 25, 3]). Ours: read once, split into
lines once, walk the frame/body structure, convert all joint lines in one
Arrow CSV call, select actors. Both run in this process, interleaved file by
file; each time is the best of `--repeats` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import pathlib
import platform
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.
from skel_llm.skeleton import ntu  # noqa: E402


def baseline_parse(path: str) -> np.ndarray:
  """Plain line-by-line parse: float32[T, 2, 25, 3] of the first two bodies per frame."""
  with open(path) as f:
    lines = f.readlines()
  num_frames = int(lines[0])
  i = 1
  positions = np.zeros((num_frames, 2, 25, 3), np.float32)
  for frame in range(num_frames):
    num_bodies = int(lines[i])
    i += 1
    for body in range(num_bodies):
      header = lines[i].split()
      if len(header) != 10:
        raise ValueError(f"{path}: line {i + 1}: expected 10 body fields")
      [float(v) for v in header[1:]]
      num_joints = int(lines[i + 1])
      if num_joints != 25:
        raise ValueError(f"{path}: line {i + 2}: expected 25 joints")
      i += 2
      for joint in range(num_joints):
        values = [float(v) for v in lines[i].split()]
        if len(values) != 12 or not all(math.isfinite(v) for v in values):
          raise ValueError(f"{path}: line {i + 1}: expected 12 finite numbers")
        if body < 2:
          positions[frame, body, joint] = values[:3]
        i += 1
  return positions


def _time(fn, path, inner: int) -> float:
  """Fastest of `inner` back-to-back calls in CPU seconds, GC off (as `timeit` does).

  CPU time of this process, not wall time: the machine is shared, and waiting
  for a core is not parsing. Both parsers run single-threaded.
  """
  gc.disable()
  try:
    best = float("inf")
    for _ in range(inner):
      t = time.process_time()
      fn(path)
      best = min(best, time.process_time() - t)
    return best
  finally:
    gc.enable()


def main():
  default = pathlib.Path(__file__).resolve().parents[2] / "shared/data/real/ntu_skeleton"
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--data", default=os.fspath(default))
  ap.add_argument("--repeats", type=int, default=7, help="rounds; the best round counts")
  ap.add_argument("--inner", type=int, default=5, help="back-to-back calls per timing")
  args = ap.parse_args()
  files = sorted(str(p) for p in pathlib.Path(args.data).glob("*.skeleton"))
  if not files:
    raise SystemExit(f"no .skeleton files in {args.data}")

  # Same numbers out of both (ours in 'first' mode keeps the same bodies as the baseline).
  for f in files:
    ours = ntu.parse_ntu(f, bodies="first").with_persons(2).positions
    if not np.array_equal(ours, baseline_parse(f)):
      raise SystemExit(f"{f}: our positions differ from the baseline's")
  ntu.parse_ntu(files[0])  # warm imports (pyarrow)

  times = {f: {"baseline": [], "ours": []} for f in files}
  for _ in range(args.repeats):
    for f in files:
      times[f]["baseline"].append(_time(baseline_parse, f, args.inner))
      times[f]["ours"].append(_time(ntu.parse_ntu, f, args.inner))

  print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}")
  print(f"per file: fastest of {args.repeats} rounds x {args.inner} back-to-back calls, process "
        "CPU time, GC off; ours = parse_ntu(bodies='denoise')\n")
  print("| file | frames | bytes | baseline ms | ours ms | speed-up |")
  print("|---|---:|---:|---:|---:|---:|")
  total = {"baseline": 0.0, "ours": 0.0}
  for f in files:
    b, o = min(times[f]["baseline"]), min(times[f]["ours"])
    total["baseline"] += b
    total["ours"] += o
    frames = int(open(f).readline())
    print(f"| {os.path.basename(f)} | {frames} | {os.path.getsize(f)} | {b * 1e3:.2f} | "
          f"{o * 1e3:.2f} | {b / o:.1f}x |")
  n = len(files)
  print(f"\n| parser | clips/s |\n|---|---:|\n| baseline (line-by-line Python) | "
        f"{n / total['baseline']:.1f} |\n| ours (skel_llm.skeleton.parse_ntu) | "
        f"{n / total['ours']:.1f} |\n| ratio ours / baseline | "
        f"{total['baseline'] / total['ours']:.2f}x |")


if __name__ == "__main__":
  main()
