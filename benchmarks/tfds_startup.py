"""Start-up of the TFDS clip source at NTU-120 scale: time to the first batch of clips.

    nice -n 5 python benchmarks/tfds_startup.py [--baseline=b65209c] [--examples=100000]

Builds (once per run, in a temp folder) a synthetic TFDS split in the layout of
`data_prep/common.py` (array_record, `positions float32[T*P*J*3]` with T frames, 2 persons,
25 joints, a 120-class `label`; `--distinct` clips written by TFDS, then their serialized
records repeated up to `--examples` in one shard, the split's length updated), reads every file once so the page cache is warm for every
measurement, then, in a fresh process per checkout, opens it with
`TfdsSource.from_config(..., "train")` and reads the first batch (8 clips): the seconds to
open the source and to the first batch, and the process's CPU seconds to the first batch
(on a shared machine the wall seconds follow the load; the CPU seconds much less). `--baseline=<rev>` runs the same child on
`git archive <rev>` of this repository beside the working tree's code (the baseline decoded
every example's positions to collect the labels).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

import baseline  # benchmarks/baseline.py, beside this script

REPO = baseline.REPO
NAME = "ntu_scale_synthetic"


def build(data_dir: pathlib.Path, examples: int, frames: int, distinct: int) -> None:
  import tensorflow_datasets as tfds

  sys.path.insert(0, str(REPO))
  from data_prep import common

  class NtuScaleSynthetic(tfds.core.GeneratorBasedBuilder):
    """Random NTU-shaped clips (no download): start-up benchmarks only."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Random clips, 120 classes."}

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=common.skeleton_features(
          label=tfds.features.ClassLabel(num_classes=120)))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      rng = np.random.default_rng(0)
      for i in range(min(examples, distinct)):
        n = frames * 2 * 25
        yield i, {"positions": rng.standard_normal(n * 3, np.float32),
                  "valid": np.ones(n, np.float32), "num_frames": frames, "num_persons": 2,
                  "num_joints": 25, "fps": 30.0, "format": "ntu25", "is_2d": False,
                  "name": f"S{i:07d}", "label": i % 120}

  NtuScaleSynthetic.name = NAME
  builder = NtuScaleSynthetic(data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare()
  if examples > distinct:
    _repeat(pathlib.Path(builder.data_dir), examples)


def _repeat(folder: pathlib.Path, examples: int) -> None:
  """Rewrites the built split with `examples` records cycling through the built ones (TFDS
  writes ~50-500 examples/s here; copying serialized records is what a large split needs)."""
  from array_record.python import array_record_module
  (shard,) = folder.glob(f"{NAME}-train.array_record-*")
  reader = array_record_module.ArrayRecordReader(str(shard))
  records = reader.read_all()
  reader.close()
  out = folder / f"{NAME}-train.array_record-00000-of-00001"
  shard.unlink()
  writer = array_record_module.ArrayRecordWriter(str(out), "group_size:1")
  for i in range(examples):
    writer.write(records[i % len(records)])
  writer.close()
  info_path = folder / "dataset_info.json"
  info = json.loads(info_path.read_text())
  for split in info["splits"]:
    if split["name"] == "train":
      split["shardLengths"] = [str(examples)]
      split["numBytes"] = str(out.stat().st_size)
  info_path.write_text(json.dumps(info))


def child(data_dir: str) -> None:
  """In a fresh process: open the source, read the first batch; prints one JSON line."""
  import ml_collections

  from skel_llm.data import tfds_source
  cfg = ml_collections.ConfigDict(dict(
      source="tfds", tfds_name=NAME, data_dir=data_dir, train_split="train", eval_split="train",
      protocol="", rationale_file="", placement="kinect", topology="ntu25"))
  t, cpu = time.perf_counter(), time.process_time()
  src = tfds_source.TfdsSource.from_config(cfg, "train")
  opened = time.perf_counter() - t
  batch = [src[i] for i in range(8)]
  first, first_cpu = time.perf_counter() - t, time.process_time() - cpu
  print(json.dumps({"open_s": opened, "first_batch_s": first, "first_batch_cpu_s": first_cpu,
                    "clips": len(src), "batch_shape": list(batch[0].positions.shape)}),
        flush=True)


def measure(code_root: pathlib.Path, data_dir: pathlib.Path) -> dict:
  env = dict(os.environ, PYTHONPATH=str(code_root), JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, __file__, "--child", str(data_dir)], env=env,
                       cwd=str(code_root), capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(f"child on {code_root} failed:\n{out.stderr[-4000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])



def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--examples", type=int, default=100_000)
  ap.add_argument("--frames", type=int, default=40, help="T of every clip (NTU: 30-300)")
  ap.add_argument("--distinct", type=int, default=1200,
                  help="clips generated through TFDS; the split repeats them up to --examples")
  ap.add_argument("--baseline", default="", help="git rev to measure beside the working tree")
  ap.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = ap.parse_args()
  baseline.first_to_go()
  if args.child:
    return child(args.child)
  with tempfile.TemporaryDirectory(prefix="tfds_startup_") as tmp:
    tmp = pathlib.Path(tmp)
    t = time.perf_counter()
    build(tmp / "data", args.examples, args.frames, args.distinct)
    files = [f for f in (tmp / "data").rglob("*") if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    for f in files:  # warm the page cache: every child reads from memory
      f.read_bytes()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f} at start; split of {args.examples} clips of "
          f"{args.frames} x 2 x 25 joints, {size / 2**30:.2f} GiB array_record (built in "
          f"{time.perf_counter() - t:.0f} s)")
    rows = []
    if args.baseline:
      base = baseline.extract(args.baseline, tmp / "baseline")
      rows.append((f"baseline {args.baseline}", measure(base, tmp / "data")))
    rows.append((f"this tree ({commit})", measure(REPO, tmp / "data")))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("| code | open source s | first batch (8 clips) s | first batch, CPU s of the process |")
    print("|---|---|---|---|")
    for name, r in rows:
      print(f"| {name} | {r['open_s']:.1f} | {r['first_batch_s']:.1f} | "
            f"{r['first_batch_cpu_s']:.1f} |")
    if len(rows) == 2:
      a, b = rows[0][1], rows[1][1]
      print(f"baseline / this tree, time to first batch: wall "
            f"{a['first_batch_s'] / b['first_batch_s']:.1f}x, CPU "
            f"{a['first_batch_cpu_s'] / b['first_batch_cpu_s']:.1f}x")


if __name__ == "__main__":
  main()
