"""Peak host memory of `config.init_from = "hf:<folder>"` on a 1B-shaped random checkpoint.

    nice -n 5 python benchmarks/hf_init_rss.py [--baseline=b65209c] [--preset=internvl3_1b]

Builds, offline, a transformers `InternVLForConditionalGeneration` with the shapes of the
preset (InternVL3-1B: InternViT-300M + Qwen2.5-0.5B, 0.94 B parameters), random bf16
weights, saved with `save_pretrained` into a temp folder. Then, in a fresh process per
checkout (8 simulated CPU devices, mesh data 2 x fsdp 2 x tensor 2, the stage-3 rules:
renderer + projector + LoRA r 32 train, the rest frozen in bf16, layers scanned), it builds
the `Run` and calls `restore_or_init(None)`, which loads the folder into the sharded state,
and reports the process's peak RSS (`ru_maxrss`: anonymous memory plus the resident pages of
the memory-mapped checkpoint) and the peak anonymous RSS (`RssAnon` of /proc/self/status,
sampled every 20 ms). On CPU the devices' buffers are host memory, so the state itself
(`state bytes`) is the floor. `--baseline=<rev>` runs the same child on `git archive <rev>`
of this repository beside the working tree's code and prints both with their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time

import baseline  # benchmarks/baseline.py, beside this script

REPO = baseline.REPO


def build_checkpoint(folder: pathlib.Path, preset: str, max_shard_size: str) -> int:
  """A random bf16 transformers InternVL with the preset's shapes, saved into `folder`."""
  import torch
  from transformers import AutoConfig, InternVLForConditionalGeneration

  sys.path.insert(0, str(REPO))
  from skel_llm import models
  from skel_llm.models import config as config_lib
  folder.mkdir(parents=True, exist_ok=True)
  cfg = getattr(models, preset)()
  (folder / "config.json").write_text(json.dumps(config_lib.to_hf_dict(cfg)))
  hf_cfg = AutoConfig.from_pretrained(str(folder))
  with torch.device("meta"):
    model = InternVLForConditionalGeneration(hf_cfg)
  model = model.to_empty(device="cpu").to(torch.bfloat16)  # no init pass: random below
  gen = torch.Generator().manual_seed(0)
  with torch.no_grad():
    for p in model.parameters():
      p.normal_(0.0, 0.02, generator=gen)
  model.save_pretrained(str(folder), max_shard_size=max_shard_size)
  return sum(p.numel() for p in model.parameters())


def _anon_kib() -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("RssAnon:"):
        return int(line.split()[1])
  return 0


def child(folder: str, preset: str) -> None:
  """In a fresh process: Run + restore_or_init from hf:<folder>; prints one JSON line."""
  peak = {"anon": 0}
  done = threading.Event()

  def sample():
    while not done.is_set():
      peak["anon"] = max(peak["anon"], _anon_kib())
      time.sleep(0.02)
  threading.Thread(target=sample, daemon=True).start()
  import jax

  from skel_llm.train import defaults, trainer
  c = defaults.base("")
  c.model.preset = preset
  c.model.dtype = c.model.param_dtype = "bfloat16"
  c.model.patch_size = 14
  c.model.scan_layers = True
  c.model.lora_rank = 32
  c.render.image_size = 448
  c.render.num_frames = 2
  c.data.max_len = 640
  c.data.num_train_clips = 16
  c.data.prefetch = 0
  c.trainable = (defaults.RENDERER, defaults.PROJECTOR, defaults.LORA)
  c.mesh.update(dict(data=2, fsdp=2, tensor=2))
  c.init_from = f"hf:{folder}"
  t = time.perf_counter()
  run = trainer.Run(c, devices=jax.devices()[:8])
  state, _ = run.restore_or_init(None)
  jax.block_until_ready(state)
  seconds = time.perf_counter() - t
  done.set()
  peak["anon"] = max(peak["anon"], _anon_kib())
  state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
  print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                    "anon_kib": peak["anon"], "state_bytes": state_bytes,
                    "seconds": seconds}), flush=True)


def measure(code_root: pathlib.Path, folder: pathlib.Path, preset: str) -> dict:
  env = dict(os.environ, PYTHONPATH=str(code_root), JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=8")
  out = subprocess.run([sys.executable, __file__, "--child", str(folder), "--preset", preset],
                       env=env, cwd=str(code_root), capture_output=True, text=True)
  if out.returncode:
    print(f"child on {code_root} failed (exit status {out.returncode}; -9 is the OOM "
          f"killer):\n{out.stderr[-2000:]}", flush=True)
    return {}
  result = json.loads(out.stdout.strip().splitlines()[-1])
  print(f"{code_root}: {result}", flush=True)
  return result


def _commit(root: pathlib.Path) -> str:
  return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                        capture_output=True, text=True).stdout.strip()



def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--preset", default="internvl3_1b")
  ap.add_argument("--baseline", default="", help="git rev to measure beside the working tree")
  ap.add_argument("--max_shard_size", default="5GB", help="of the random checkpoint")
  ap.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = ap.parse_args()
  baseline.first_to_go()
  if args.child:
    return child(args.child, args.preset)
  with tempfile.TemporaryDirectory(prefix="hf_init_rss_") as tmp:
    tmp = pathlib.Path(tmp)
    t = time.perf_counter()
    n = build_checkpoint(tmp / "ckpt", args.preset, args.max_shard_size)
    files = sorted((tmp / "ckpt").glob("*.safetensors"))
    size = sum(f.stat().st_size for f in files)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f} at start; checkpoint {args.preset}: {n / 1e9:.2f} B params, "
          f"{len(files)} file(s), {size / 2**30:.2f} GiB bf16 (built in "
          f"{time.perf_counter() - t:.0f} s)")
    rows = []
    if args.baseline:
      base = baseline.extract(args.baseline, tmp / "baseline")
      rows.append((f"baseline {args.baseline}", measure(base, tmp / "ckpt", args.preset)))
    rows.append((f"this tree ({_commit(REPO)})", measure(REPO, tmp / "ckpt", args.preset)))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("| code | peak RSS GiB | peak anonymous RSS GiB | state GiB | seconds |")
    print("|---|---|---|---|---|")
    for name, r in rows:
      if not r:
        print(f"| {name} | failed | | | |")
        continue
      print(f"| {name} | {r['maxrss_kib'] / 2**20:.2f} | {r['anon_kib'] / 2**20:.2f} | "
            f"{r['state_bytes'] / 2**30:.2f} | {r['seconds']:.0f} |")
    if len(rows) == 2 and all(r for _, r in rows):
      a, b = rows[0][1], rows[1][1]
      print(f"baseline / this tree: peak RSS {a['maxrss_kib'] / b['maxrss_kib']:.2f}x, "
            f"anonymous {a['anon_kib'] / b['anon_kib']:.2f}x")


if __name__ == "__main__":
  main()
