"""InternVL speed on this machine: Flax port vs transformers' PyTorch model, side by side.

    python benchmarks/mllm.py            # mid-size config, ~2-4 minutes on 2 CPU cores
    python benchmarks/mllm.py --quick    # smaller and fewer repeats, for a smoke run

Prints three tables:
1. forward and forward+backward throughput (tokens/s) of a mid-size configuration (text width
   512, 8 decoder layers, InternViT width 256 x 4 layers, one 448^2 image = 256 visual tokens +
   64 text tokens per sample, batch 4), float32, ours (jitted) vs transformers (eager, same
   weights), as a ratio;
2. generation tokens/s with the KV cache vs re-running the whole sequence per token;
3. scoring 12 candidate answers with the prefix's cache reused vs scoring each from scratch.
Each figure is the median of several timed repeats after a warm-up (compilation excluded).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # Run from a checkout.
from skel_llm import models  # noqa: E402
from skel_llm.models import config as config_lib  # noqa: E402


def mid_config(quick: bool) -> models.InternVLConfig:
  vision = config_lib.VisionConfig(hidden_size=256, num_layers=2 if quick else 4, num_heads=4,
                                   intermediate_size=1024, image_size=448, patch_size=14)
  text = config_lib.TextConfig(vocab_size=4096, hidden_size=512, num_layers=4 if quick else 8,
                               num_heads=8, num_kv_heads=2, head_dim=64, intermediate_size=1536,
                               tie_word_embeddings=False)
  return models.InternVLConfig(vision=vision, text=text, image_size=448, image_token_id=5)


def timed_pair(fn_a, fn_b, repeats: int) -> tuple[float, float]:
  """Median wall times of two functions (after a warm-up each), run alternately so that a
  shared machine's varying load hits both alike."""
  fns = [f for f in (fn_a, fn_b) if f is not None]
  for f in fns:
    f()
  times = [[] for _ in fns]
  for _ in range(repeats):
    for f, ts in zip(fns, times):
      t0 = time.perf_counter()
      f()
      ts.append(time.perf_counter() - t0)
  return tuple(statistics.median(ts) for ts in times) + (None,) * (2 - len(fns))


def batch(config, b: int, n_text: int, rng):
  t = config.num_image_token
  ids = np.concatenate([rng.integers(10, 4000, (b, n_text // 2)), np.full((b, 1), 3),
                        np.full((b, t), config.image_token_id), np.full((b, 1), 4),
                        rng.integers(10, 4000, (b, n_text - n_text // 2 - 2))], axis=1)
  px = rng.uniform(0, 1, (b, 3, 448, 448)).astype(np.float32)
  return ids.astype(np.int32), px


def build_pair(config):
  """(our model, transformers model) with identical weights, via an exported checkpoint."""
  import torch
  from transformers import InternVLForConditionalGeneration
  ours = models.InternVL(config, rngs=nnx.Rngs(0))
  with tempfile.TemporaryDirectory() as d:
    models.export_hf(ours, d)
    theirs = InternVLForConditionalGeneration.from_pretrained(d, dtype=torch.float32)
  return ours, theirs


def throughput_table(config, args):
  import torch
  rng = np.random.default_rng(0)
  ours, theirs = build_pair(config)
  ids, px = batch(config, args.batch, args.text_tokens, rng)
  labels = np.roll(ids, -1, axis=1)
  n_tokens = ids.size
  graphdef, params = nnx.split(ours)

  def loss_fn(params, ids, px, labels):
    # Cross-entropy as logsumexp - <one-hot, logits>: a dense backward (no scatter).
    logits = nnx.merge(graphdef, params)(ids, None, px)
    picked = jnp.sum(logits * jax.nn.one_hot(labels, logits.shape[-1]), axis=-1)
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - picked)

  fwd = jax.jit(lambda p, i, x: nnx.merge(graphdef, p)(i, None, x))
  fwd_bwd = jax.jit(jax.value_and_grad(loss_fn))
  jids, jpx, jlab = jnp.asarray(ids), jnp.asarray(px), jnp.asarray(labels)

  tids, tpx, tlab = (torch.from_numpy(ids).long(), torch.from_numpy(px),
                     torch.from_numpy(labels).long())
  theirs.eval()

  def torch_fwd():
    with torch.no_grad():
      return theirs(input_ids=tids, pixel_values=tpx).logits

  def torch_fwd_bwd():
    theirs.zero_grad(set_to_none=True)
    logits = theirs(input_ids=tids, pixel_values=tpx).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tlab.reshape(-1))
    loss.backward()

  t_ours_f, t_torch_f = timed_pair(lambda: fwd(params, jids, jpx).block_until_ready(),
                                   torch_fwd, args.repeats)
  t_ours_b, t_torch_b = timed_pair(
      lambda: jax.block_until_ready(fwd_bwd(params, jids, jpx, jlab)), torch_fwd_bwd,
      args.repeats)
  print(f"\n1. throughput, batch {args.batch} x {ids.shape[1]} tokens "
        f"({config.num_image_token} visual + {args.text_tokens} text), float32")
  print(f"{'pass':<18}{'ours tok/s':>12}{'torch tok/s':>13}{'ours/torch':>12}")
  for name, a, b in (("forward", t_ours_f, t_torch_f), ("forward+backward", t_ours_b, t_torch_b)):
    print(f"{name:<18}{n_tokens / a:>12.0f}{n_tokens / b:>13.0f}{b / a:>11.2f}x")
  return ours


def generation_table(model, config, args):
  rng = np.random.default_rng(1)
  ids, px = batch(config, 1, args.text_tokens, rng)
  n_new = args.new_tokens

  def run(use_cache):
    return models.generate(model, ids, None, px, max_new_tokens=n_new,
                           use_cache=use_cache).block_until_ready()

  with_cache, without = timed_pair(lambda: run(True), lambda: run(False),
                                  max(1, args.repeats // 2))
  same = bool(np.array_equal(run(True), run(False)))
  print(f"\n2. greedy generation, 1 prompt of {ids.shape[1]} tokens, {n_new} new tokens "
        f"(identical output: {same})")
  print(f"{'decoder':<22}{'tok/s':>10}{'speed-up':>10}")
  print(f"{'without KV cache':<22}{n_new / without:>10.1f}{1.0:>9.2f}x")
  print(f"{'with KV cache':<22}{n_new / with_cache:>10.1f}{without / with_cache:>9.2f}x")


def scoring_table(model, config, args):
  rng = np.random.default_rng(2)
  ids, px = batch(config, 1, args.text_tokens, rng)
  mask = np.ones_like(ids)
  cands = rng.integers(10, 4000, (1, 12, 6)).astype(np.int32)
  cmask = np.ones(cands.shape, bool)
  cmask[:, ::2, 4:] = False

  def run(reuse):
    return models.score_candidates(model, ids, mask, px, cands, cmask,
                                   reuse_prefix=reuse).block_until_ready()

  shared, scratch = timed_pair(lambda: run(True), lambda: run(False), max(1, args.repeats // 2))
  diff = float(np.abs(np.asarray(run(True)) - np.asarray(run(False))).max())
  print(f"\n3. scoring 12 candidates (<= 6 tokens) after a {ids.shape[1]}-token prefix with one "
        f"image (max |difference| {diff:.1e})")
  print(f"{'method':<26}{'seconds':>10}{'speed-up':>10}")
  print(f"{'each from scratch':<26}{scratch:>10.3f}{1.0:>9.2f}x")
  print(f"{'shared prefix + KV cache':<26}{shared:>10.3f}{scratch / shared:>9.2f}x")


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--text_tokens", type=int, default=64)
  parser.add_argument("--new_tokens", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()
  if args.quick:
    args.repeats, args.new_tokens = 2, 16
  import torch
  config = mid_config(args.quick)
  print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); config: text {config.text.hidden_size} x "
        f"{config.text.num_layers} layers, vision {config.vision.hidden_size} x "
        f"{config.vision.num_layers} layers, vocab {config.text.vocab_size}")
  model = throughput_table(config, args)
  generation_table(model, config, args)
  scoring_table(model, config, args)


if __name__ == "__main__":
  main()
