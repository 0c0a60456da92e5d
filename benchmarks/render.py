"""DrAction speed and memory: tiled vs dense path, forward and forward+backward.

Run: `python benchmarks/render.py`. The dense path is timed only at the
batch sizes in `--dense-batches` (default 1: one 448^2 clip forward+backward
takes minutes on 2 cores); at other batch sizes its memory is still reported
(from the compiled program) and its time is shown as '-'. Inputs: the two-person reference clip S001C003P008R002A058
(12 frames, 448^2) with the released candidate 1, repeated to the batch size
with small per-clip offsets. Prints one table: clips/s of each path, the
tiled/dense ratio, and the peak memory XLA plans for each compiled program
(arguments + outputs + temporaries, from `compiled.memory_analysis()`).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.
from skel_llm.render import checkpoint, renderer  # noqa: E402

REF = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "draction_reference"


def _inputs(batch: int):
  ref = np.load(REF / "S001C003P008R002A058_01_448.npz")
  offsets = np.linspace(-0.05, 0.05, batch, dtype=np.float32)[:, None, None, None, None]
  present = np.any(ref["poses"] != 0, axis=(-1, -2), keepdims=True)[None]
  poses = np.where(present, ref["poses"][None] + offsets * np.array([1, 0, 0], np.float32), 0.0)
  vels = np.repeat(ref["vels"][None], batch, axis=0)
  return jnp.asarray(poses, jnp.float32), jnp.asarray(vels)


def _programs(weights, dense: bool, size: int, tile: int):
  buffers = weights["buffers"]
  kw = dict(image_size=size, dense=dense, tile=tile)

  def forward(params, poses, vels):
    frames, overflow, _ = renderer.render_batch({"params": params, "buffers": buffers}, poses,
                                                vels, **kw)
    return frames, overflow

  def loss(params, poses, vels):
    frames, _ = forward(params, poses, vels)
    return jnp.mean(frames**2)

  return {"fwd": jax.jit(forward), "fwd+bwd": jax.jit(jax.grad(loss, argnums=(0, 1)))}


def _measure(fn, args, repeats: int, run: bool = True):
  t0 = time.perf_counter()
  compiled = fn.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
          - mem.alias_size_in_bytes)
  if not run:
    return None, peak / 2**30, compile_s, None
  out = jax.block_until_ready(compiled(*args))  # warm-up
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    times.append(time.perf_counter() - t0)
  return min(times), peak / 2**30, compile_s, out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dense-batches", default="1", help="batch sizes at which to time dense")
  parser.add_argument("--dense-passes", default="fwd,fwd+bwd", help="passes at which to time dense")
  parser.add_argument("--size", type=int, default=448)
  parser.add_argument("--tile", type=int, default=16)
  parser.add_argument("--batches", default="1,8")
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args()
  weights = checkpoint.load_released(REF / "draction_candidate_01.safetensors")
  print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, jax {jax.__version__} "
        f"({jax.devices()[0].platform}); 12 frames x {args.size}^2, 2 persons, tile {args.tile}")
  header = (f"{'batch':>5} {'pass':8s} {'tiled c/s':>9} {'GiB':>8} {'dense c/s':>8} {'GiB':>7} "
            f"{'ratio':>7} {'overflow':>9}")
  print(header, flush=True)
  rows = []
  for batch in [int(b) for b in args.batches.split(",")]:
    poses, vels = _inputs(batch)
    for mode in ("fwd", "fwd+bwd"):
      result = {}
      for dense in (False, True):
        fn = _programs(weights, dense, args.size, args.tile)[mode]
        repeats = 1 if dense else args.repeats
        run = not dense or (str(batch) in args.dense_batches.split(",")
                            and mode in args.dense_passes.split(","))
        sec, gib, comp, out = _measure(fn, (weights["params"], poses, vels), repeats, run)
        overflow = int(np.asarray(out[1]).sum()) if mode == "fwd" and run else 0
        result[dense] = (sec, gib, comp, overflow)
      tiled, dense_r = result[False], result.get(True)
      timed = dense_r[0] is not None
      ratio = f"{dense_r[0] / tiled[0]:.0f}x" if timed else "-"
      dense_cols = f"{batch / dense_r[0]:8.3f}" if timed else f"{'-':>8}"
      dense_cols += f" {dense_r[1]:7.2f}"
      rows.append(f"{batch:5d} {mode:8s} {batch / tiled[0]:9.2f} {tiled[1]:8.2f} {dense_cols} "
                  f"{ratio:>7} {tiled[3]:9d}")
      print(rows[-1], flush=True)
  print("\n" + header)
  print("\n".join(rows))


if __name__ == "__main__":
  main()
