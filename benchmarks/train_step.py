"""Train-step throughput: samples/s, compile time, peak memory, and the renderer's share.

    python benchmarks/train_step.py [--configs demo,mid] [--steps 5] [--tiles 16,8]
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python benchmarks/train_step.py --hlo


For each configuration it builds the real run (`skel_llm.train.trainer.Run`), compiles the
jitted sharded step once, times `--steps` steps, reads the compiled step's memory analysis
(XLA's argument + output + temporary bytes; on GPU/TPU also the allocator's peak), and times
the renderer alone (frame selection + DrAction forward and backward over the same batch,
jitted) to give its share of the step. `--tiles` repeats each configuration at each tile side
of the tiled rasteriser (`config.render.tile`) and reports the (tile, Gaussian) pairs the
batch's frames need and drop (overflow; 0: exact up to the rasteriser's eps). All numbers come
from this run, side by side, on the machine it prints.

`--hlo` only compiles: for each configuration and three meshes over all devices (pure data
parallel, data x fsdp 2 x tensor 2, pure FSDP) it prints what the partitioned step
communicates (count and bytes per device of each collective kind, read from the compiled
HLO by `skel_llm.train.hlo_stats`) and XLA's temporary memory. On CPU, simulate devices with
XLA_FLAGS as above.
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
from flax import nnx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(name: str):
  from skel_llm.train import defaults
  c = defaults.load_config(REPO / "configs" / "distill.py", None)
  c.data.prefetch = 0
  if name == "mid":
    # A mid-size model: 112^2 frames, patch 14 (64 patches -> 16 tokens), 12 frames,
    # 4-layer 256-wide ViT, 4-layer 512-wide Qwen, MQA prompts.
    c.render.image_size = 112
    c.render.num_frames = 12
    c.model.patch_size = 14
    c.model.vision_width, c.model.vision_layers, c.model.vision_heads = 256, 4, 4
    c.model.vision_mlp = 1024
    c.model.text_width, c.model.text_layers, c.model.text_heads = 512, 4, 8
    c.model.text_kv_heads, c.model.text_mlp = 2, 1536
    c.data.task = "mqa"
    c.data.max_len = 768
  elif name != "demo":
    raise ValueError(f"unknown benchmark config {name!r}; use demo or mid")
  return c


def _time(fn, steps: int) -> float:
  jax.block_until_ready(fn())
  t = time.perf_counter()
  for _ in range(steps):
    out = fn()
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / steps


def bench(name: str, steps: int, tile: int | None = None) -> dict:
  from skel_llm.render import frames as frames_lib, renderer as renderer_lib
  from skel_llm.train import trainer
  c = _config(name)
  if tile is not None:
    c.render.tile = tile
  run = trainer.Run(c)
  state = run.init_state()
  batch = run.batch_to_device(run.train_data.batch(0))
  rng = jax.random.key(0)
  step = run.step_fn()
  t = time.perf_counter()
  compiled = step.lower(state, batch, rng).compile()
  compile_s = time.perf_counter() - t
  mem = compiled.memory_analysis()
  xla_bytes = (mem.argument_size_in_bytes + mem.output_size_in_bytes
               + mem.temp_size_in_bytes - mem.alias_size_in_bytes) if mem is not None else 0
  holder = {"state": state}

  def one():
    holder["state"], m = compiled(holder["state"], batch, rng)
    return m["loss"]
  step_s = _time(one, steps)
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use", 0)

  graphdef, rng_vars = run.layout.graphdef, run.rng_vars

  def render_loss(params, frozen):
    model = nnx.merge(graphdef, params, frozen, rng_vars)
    frames = model.render(batch["positions"], batch["num_frames"], rng)
    return jnp.mean(frames)
  render_grad = jax.jit(jax.grad(render_loss))
  st = holder["state"]
  render_s = _time(lambda: render_grad(st["params"], st["frozen"]), steps)
  r = c.render
  poses, vels, _ = frames_lib.select_frames_batch(batch["positions"], batch["num_frames"],
                                                  r.num_frames, rng=None,
                                                  stride=r.velocity_stride)
  weights = nnx.merge(graphdef, st["params"], st["frozen"], rng_vars).renderer.weights()
  _, overflow, pairs = renderer_lib.render_batch(weights, poses, vels, image_size=r.image_size,
                                                 fov_deg=r.fov_deg, tile=r.tile)
  return dict(config=name, tile=r.tile, pairs=int(pairs.max()), overflow=int(overflow.sum()),
              batch=c.batch_size, frames=c.render.num_frames,
              image=c.render.image_size, tokens=int(c.data.max_len),
              params=run.layout.num_params("params") + run.layout.num_params("frozen"),
              compile_s=compile_s, step_s=step_s, samples_s=c.batch_size / step_s,
              xla_mib=xla_bytes / 2**20, peak_mib=peak / 2**20, render_share=render_s / step_s)


def _meshes(n: int) -> list[dict[str, int]]:
  meshes = [dict(data=n, fsdp=1, tensor=1)]
  if n % 4 == 0 and n > 4:
    meshes.append(dict(data=n // 4, fsdp=2, tensor=2))
  if n > 1:
    meshes.append(dict(data=1, fsdp=n, tensor=1))
  return meshes


def hlo_rows(name: str) -> list[dict]:
  """Collective counts / bytes and temp memory of the compiled step on each mesh."""
  from skel_llm.train import hlo_stats, trainer
  rows = []
  for mesh in _meshes(jax.device_count()):
    c = _config(name)
    c.mesh.update(mesh)
    run = trainer.Run(c)
    run.init_state()
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    compiled = run.step_fn().lower(run.layout.abstract, run.abstract_batch(), key).compile()
    stats = hlo_stats.collectives(compiled.as_text())
    mem = compiled.memory_analysis()
    rows.append(dict(config=name, mesh=mesh, stats=stats, total=hlo_stats.total_bytes(stats),
                     temp=mem.temp_size_in_bytes if mem is not None else 0))
  return rows


def print_hlo(rows: list[dict]) -> None:
  from skel_llm.train import hlo_stats
  head = ("config", "mesh (data, fsdp, tensor)") + hlo_stats.KINDS + ("total MiB", "temp MiB")
  print("| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  for r in rows:
    m = r["mesh"]
    cells = [f"{n} / {b / 2**10:.0f} KiB" if n else "-"
             for n, b in (r["stats"].get(k, (0, 0)) for k in hlo_stats.KINDS)]
    print(f"| {r['config']} | {m['data']}, {m['fsdp']}, {m['tensor']} | " + " | ".join(cells)
          + f" | {r['total'] / 2**20:.2f} | {r['temp'] / 2**20:.0f} |")
  print("collective cells: count / bytes per device of the ops' results in the partitioned "
        "step (hlo_stats); temp: XLA's temporary buffers per device.")


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--configs", default="demo,mid")
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--tiles", default="",
                  help="comma list of config.render.tile values (default: the config's)")
  ap.add_argument("--hlo", action="store_true",
                  help="compile only; print each mesh's collectives and temp memory")
  args = ap.parse_args()
  dev = jax.devices()[0]
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{jax.device_count()} x {dev.platform} ({dev.device_kind}), jax {jax.__version__}")
  if args.hlo:
    print_hlo([r for n in args.configs.split(",") for r in hlo_rows(n)])
    return
  tiles = [int(t) for t in args.tiles.split(",")] if args.tiles else [None]
  rows = [bench(n, args.steps, t) for n in args.configs.split(",") for t in tiles]
  head = ("config", "tile", "pairs/frame (max)", "overflow", "batch", "frames", "image",
          "tokens", "params", "compile s", "step s", "samples/s", "XLA MiB", "peak MiB",
          "renderer share")
  print("| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  for r in rows:
    print(f"| {r['config']} | {r['tile']} | {r['pairs']} | {r['overflow']} | {r['batch']} | "
          f"{r['frames']} | {r['image']} | {r['tokens']} | "
          f"{r['params']:,} | {r['compile_s']:.1f} | {r['step_s']:.3f} | {r['samples_s']:.2f} | "
          f"{r['xla_mib']:.0f} | {r['peak_mib']:.0f} | {100 * r['render_share']:.0f} % |")
  print("renderer share = (frame selection + DrAction forward+backward, jitted alone) / step; "
        "peak MiB is the allocator's peak (0 where the platform does not report it).")


if __name__ == "__main__":
  main()
