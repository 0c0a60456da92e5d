"""Train-step compile time against text depth, layers unrolled vs under `scan`.

    python benchmarks/compile_depth.py [--layers 2,8,28]

For the `mid` shape of benchmarks/train_step.py (112^2 frames, 4-layer 256-wide ViT,
512-wide Qwen) at each text depth it builds the real run, lowers the jitted sharded step
with abstract arguments and compiles it for this host's backend, once with the layers
unrolled (`model.scan_layers=False`) and once stacked under `jax.lax.scan`, both with
`model.remat='full'`, and prints the seconds of each and their ratio, side by side.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import sys
import time

import jax

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def compile_seconds(layers: int, scan: bool) -> float:
  import train_step
  from skel_llm.train import trainer
  c = train_step._config("mid")
  c.model.text_layers = layers
  c.model.remat = "full"
  c.model.scan_layers = scan
  run = trainer.Run(c)
  run.init_state()
  key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
  lowered = run.step_fn().lower(run.layout.abstract, run.abstract_batch(), key)
  t = time.perf_counter()
  lowered.compile()
  return time.perf_counter() - t


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--layers", default="2,8,28")
  args = ap.parse_args()
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{jax.device_count()} x {jax.devices()[0].platform}, jax {jax.__version__}")
  print("| text layers | unrolled compile s | scanned compile s | unrolled / scanned |")
  print("|---|---|---|---|")
  for n in (int(x) for x in args.layers.split(",")):
    unrolled, scanned = compile_seconds(n, False), compile_seconds(n, True)
    print(f"| {n} | {unrolled:.1f} | {scanned:.1f} | {unrolled / scanned:.2f} |", flush=True)


if __name__ == "__main__":
  main()
