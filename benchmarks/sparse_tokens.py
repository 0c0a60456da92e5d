"""Foreground sparsification (`model.visual_tokens_per_frame`): FLOPs and step time, K vs dense.

    python benchmarks/sparse_tokens.py [--tokens 0,256,48] [--image 448] [--batch 2] [--steps 2]

The `mid` model of `benchmarks/train_step.py` (4-layer 256-wide InternViT, 4-layer 512-wide
Qwen, 12 frames, MQA prompts) at 448^2 frames, the paper's resolution (1,024 patches, 256
cells of 28^2 px = 256 visual tokens per frame). For each K (0 = the dense path) it builds the
real run (`skel_llm.train.trainer.Run`; the prompts carry K `<IMG_CONTEXT>` per frame and
`data.max_len` shrinks by 12 x (256 - K)), compiles the train step and reads XLA's
`cost_analysis()` FLOPs, compiles the vision side alone (InternViT + pixel shuffle + projector
on the batch's rendered frames, forward) for its FLOPs, times `--steps` steps, and counts the
foreground cells of the rendered frames (summed intensity above one 8-bit level). All rows
come from this run, side by side, with the machine and its load printed.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import sys
import time

import jax
import numpy as np
from flax import nnx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import train_step as train_step_bench  # noqa: E402  (benchmarks/ is not a package)

FRAMES = 12


def _config(k: int, image: int, batch: int):
  c = train_step_bench._config("mid")
  text = c.data.max_len - FRAMES * (c.render.image_size // c.model.patch_size // 2) ** 2
  c.render.image_size = image
  c.batch_size = batch
  cells = (image // c.model.patch_size // 2) ** 2
  c.model.visual_tokens_per_frame = k
  c.data.max_len = text + FRAMES * (k or cells)
  return c, cells


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", float("nan")))


def bench(k: int, image: int, batch: int, steps: int) -> dict:
  """One row; steps 0 only compiles (no step time, no foreground count)."""
  from skel_llm.models import vision
  from skel_llm.train import trainer
  c, cells = _config(k, image, batch)
  run = trainer.Run(c)
  state = run.init_state()
  batch_dev = run.batch_to_device(run.train_data.batch(0))
  rng = jax.random.key(0)
  t = time.perf_counter()
  compiled = run.step_fn().lower(state, batch_dev, rng).compile()
  compile_s = time.perf_counter() - t
  step_flops = _flops(compiled)
  mem = compiled.memory_analysis()
  temp_mib = mem.temp_size_in_bytes / 2**20 if mem is not None else float("nan")

  graphdef, rng_vars = run.layout.graphdef, run.rng_vars
  model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
  px = jax.ShapeDtypeStruct((batch * FRAMES, 3, image, image), np.float32)

  def vision_fwd(m, px):
    return m.mllm.image_tokens(px)[0]
  vision_flops = _flops(jax.jit(vision_fwd).lower(model, px).compile())
  row = dict(k=k or cells, dense=not k, tokens=FRAMES * (k or cells), max_len=c.data.max_len,
             step_tflops=step_flops / 1e12, vision_gflops=vision_flops / 1e9 / px.shape[0],
             temp_mib=temp_mib, compile_s=compile_s, step_s=float("nan"), fg=None)
  if not steps:
    return row
  frames = jax.jit(lambda m, b: m.render(b["positions"], b["num_frames"], None))(
      model, batch_dev)
  mcfg = model.mllm.config
  _, fg = vision.select_cells(model.pixel_values(frames).reshape(px.shape),
                              mcfg.patch_size * mcfg.shuffle_factor, cells,
                              mcfg.foreground_threshold)
  fg = np.asarray(fg).sum(axis=1)
  row["fg"] = (float(fg.mean()), int(fg.min()), int(fg.max()))

  holder = {"state": state}

  def one():
    holder["state"], m = compiled(holder["state"], batch_dev, rng)
    return m["loss"]
  jax.block_until_ready(one())
  t = time.perf_counter()
  for _ in range(steps):
    out = one()
  jax.block_until_ready(out)
  row["step_s"] = (time.perf_counter() - t) / steps
  return row


def paper_vision_tflops(k: int) -> float:
  """XLA:CPU FLOPs of the vision side (InternViT-300M + shuffle + projector, forward, bf16) for
  one 12 x 448^2 clip of the `:paper` model, compiled from abstract weights (none exist here)."""
  from skel_llm import models
  # Unrolled: XLA's cost_analysis counts a scanned (while-loop) body once, not per layer.
  cfg = models.internvl3_8b(dtype="bfloat16", param_dtype="bfloat16", scan_layers=False,
                            visual_tokens_per_frame=k)
  graphdef, state = nnx.split(nnx.eval_shape(lambda: models.InternVL(cfg, rngs=nnx.Rngs(0))))
  vstate = {"vision_tower": state["vision_tower"],
            "multi_modal_projector": state["multi_modal_projector"]}

  def fwd(vstate, px):
    st = dict(state)
    st.update(vstate)  # the LLM's abstract leaves are never read
    return nnx.merge(graphdef, nnx.State(st)).image_tokens(px)[0]
  px = jax.ShapeDtypeStruct((FRAMES, 3, 448, 448), np.float32)
  return _flops(jax.jit(fwd).lower(vstate, px).compile()) / 1e12


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--tokens", default="0,256,48", help="K per frame; 0 = the dense path")
  ap.add_argument("--image", type=int, default=448)
  ap.add_argument("--batch", type=int, default=2)
  ap.add_argument("--steps", type=int, default=2, help="timed steps; 0 only compiles")
  ap.add_argument("--paper_tokens", default="0,48",
                  help="K per frame for the paper model's vision FLOPs ('' skips them)")
  args = ap.parse_args()
  dev = jax.devices()[0]
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{jax.device_count()} x {dev.platform}, jax {jax.__version__}; load average at start "
        f"{os.getloadavg()[0]:.1f}", flush=True)
  if args.paper_tokens:
    print("| paper vision side, one 12 x 448^2 clip | tokens / frame | TFLOP (XLA cost_analysis) "
          "| vs first row |\n|---|---|---|---|")
    first = None
    for k in (int(x) for x in args.paper_tokens.split(",")):
      tf = paper_vision_tflops(k)
      first = first or tf
      print(f"| {'dense' if not k else 'sparse'} | {k or 256} | {tf:.2f} | {tf / first:.3f} |",
            flush=True)
  rows = []
  for k in (int(x) for x in args.tokens.split(",") if x):
    rows.append(bench(k, args.image, args.batch, args.steps))
    print(f"  done K={rows[-1]['k']} ({'dense' if rows[-1]['dense'] else 'sparse'}), load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
  if not rows:
    return
  base = rows[0]
  head = ("path", "tokens / frame", "visual tokens / clip", "max_len", "step TFLOP",
          "vision GFLOP / frame (fwd)", "XLA temp MiB", "step s", "vs first row: FLOPs",
          "vision FLOPs", "temp", "step time", "compile s")
  print("| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  for r in rows:
    print(f"| {'dense' if r['dense'] else 'sparse'} | {r['k']} | {r['tokens']} | {r['max_len']} | "
          f"{r['step_tflops']:.3f} | {r['vision_gflops']:.2f} | {r['temp_mib']:.0f} | "
          f"{r['step_s']:.2f} | {r['step_tflops'] / base['step_tflops']:.3f} | "
          f"{r['vision_gflops'] / base['vision_gflops']:.3f} | "
          f"{r['temp_mib'] / base['temp_mib']:.3f} | {r['step_s'] / base['step_s']:.3f} | "
          f"{r['compile_s']:.0f} |")
  fg = rows[0]["fg"]
  fg = (f"foreground cells per rendered frame: mean {fg[0]:.1f}, min {fg[1]}, max {fg[2]} of "
        f"{rows[0]['k']}" if fg else "compile only (--steps 0)")
  print(f"batch {args.batch} clips x {FRAMES} frames of {args.image}^2; {fg}; load average at "
        f"end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
  main()
