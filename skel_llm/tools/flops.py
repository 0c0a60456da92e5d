"""Model FLOPs of one train step (or one forward pass), counted from the configuration.

XLA's `cost_analysis()` counts the body of a `while_loop` once, so with `model.scan_layers`
the compiled train step's FLOPs hold one layer per scanned stack. This module counts the
matrix products the step runs, as `skel_llm.models` and `skel_llm.train.step` compute them
(MaxText's `calculate_tflops_training_per_device` does the same for its decoders), at
2 FLOPs per multiply-add:

* Qwen2.5 decoder layers: q / k / v / o projections (k, v at the grouped-query width
  kv_heads x head_dim), the gated MLP (gate, up, down), LoRA adapters (x A, then (x A) B);
  attention logits and values over the full L x L square of every head (`layers.attention`
  masks, it skips nothing).
* The LM head (tied or not) on every position: L per row without `loss_chunk`, else the
  L - 1 predicting positions rounded up to whole chunks (`step.chunked_answer_loss`).
* InternViT: the patch embedding, per layer q / k / v / projection and fc1 / fc2, attention
  over 1 + patches tokens (the kept K x f^2 patches + class token with
  `visual_tokens_per_frame`); the pixel-shuffle projector's two linears on every visual token.
* Backward: every product whose input carries a gradient gets its input gradient, and every
  trained weight (`config.trainable` rules) its weight gradient (one product each, as large as
  the forward one); attention's backward is two products per forward product. A block
  upstream of which nothing trains gets no backward at all: the vision tower is
  differentiated only where the renderer trains (stage 3), the projector's input gradient
  only then too.
* Remat: "full" recomputes each differentiated layer's forward in the backward pass except
  the products whose outputs only feed the residual stream (MLP down / ViT fc2 and the
  LoRA B product of down): the next layer's saved input already holds them, and XLA drops
  their recomputation. "dots" keeps the weight products and recomputes attention's two
  batched products. `loss_chunk` adds one recomputation of the LM head (its scan body is
  checkpointed).

Not counted: the renderer (small MLPs and a raster, elementwise), norms, activations,
softmax, rotary embeddings, the loss, the optimizer update (elementwise, and XLA counts
exp / rsqrt as transcendentals, not FLOPs) and the bicubic resize of the position table (only
when the frames' size differs from the checkpoint's; a few hundred MFLOP once per step).
`tests/tools/test_flops.py` checks the count against XLA:CPU on unrolled layers.

Glossary: B batch, L tokens per sample, F frames per sample, T tokens per image (class token
included), D width, V vocabulary, r LoRA rank.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import re
from typing import Callable, Sequence

PASSES = ("forward", "backward", "remat")
BLOCKS = ("vit", "projector", "llm", "lora", "lm_head")


@dataclasses.dataclass
class Count:
  """FLOPs of one global step by (block, pass); `BLOCKS` x `PASSES`."""

  flops: dict[tuple[str, str], float]

  def total(self, passes: Sequence[str] = PASSES, blocks: Sequence[str] = BLOCKS) -> float:
    return float(sum(v for (b, p), v in self.flops.items() if p in passes and b in blocks))

  def get(self, block: str, pass_: str) -> float:
    return float(self.flops.get((block, pass_), 0.0))

  @property
  def useful(self) -> float:
    """Without recomputation: what MFU counts."""
    return self.total(("forward", "backward"))


def trained_by_rules(patterns: Sequence[str]) -> Callable[[str], bool]:
  """`path -> bool`: the stage's `config.trainable` regexes (full match, as
  `train.sharding.regex_filter`)."""
  compiled = [re.compile(p) for p in patterns]
  return lambda path: any(c.fullmatch(path) for c in compiled)


class _Counter:
  def __init__(self):
    self.flops: dict[tuple[str, str], float] = collections.defaultdict(float)

  def matmul(self, block: str, m: float, k: int, n: int, *, grad_in: bool, trained: bool,
             recompute: bool, train: bool) -> None:
    """x[m, k] @ W[k, n]: forward; its input / weight gradient; its remat recomputation."""
    f = 2.0 * m * k * n
    self.flops[(block, "forward")] += f
    if not train:
      return
    self.flops[(block, "backward")] += f * (int(grad_in) + int(trained))
    if recompute:
      self.flops[(block, "remat")] += f

  def attention(self, block: str, images: float, heads: int, q_len: int, k_len: int,
                head_dim: int, *, grad: bool, recompute: bool, train: bool) -> None:
    """Logits q.k and values p.v of every head; backward 2 products per forward one."""
    f = 2 * 2.0 * images * heads * q_len * k_len * head_dim
    self.flops[(block, "forward")] += f
    if train and grad:
      self.flops[(block, "backward")] += 2 * f
      if recompute:
        self.flops[(block, "remat")] += f


def _remat_name(value) -> str:
  if isinstance(value, bool):
    return "full" if value else "none"
  return str(value)


def count(config, mcfg, *, train: bool = True,
          trained: Callable[[str], bool] | None = None) -> Count:
  """FLOPs of one global train step (`train`) or forward pass of `config`'s model.

  Args:
    config: the training ConfigDict (batch_size, data.max_len, render.num_frames, loss_chunk,
      trainable).
    mcfg: its `models.InternVLConfig` (`train.build.mllm_config`), which holds the towers,
      remat policies, `scan_layers`, LoRA and `visual_tokens_per_frame`.
    train: the train step (forward + backward + remat); False: the forward pass alone
      (logits on every position).
    trained: `path -> bool` on parameter paths such as
      `mllm/language_model/layers/0/self_attn/q_proj/lora_a` (default: `config.trainable`).
  """
  trained = trained or trained_by_rules(config.trainable)
  c = _Counter()
  v, t = mcfg.vision, mcfg.text
  b, n_frames, seq = int(config.batch_size), int(config.render.num_frames), int(config.data.max_len)
  images = b * n_frames
  f = mcfg.shuffle_factor
  k_tokens = mcfg.visual_tokens_per_frame
  grid = mcfg.image_size // mcfg.patch_size
  patches = k_tokens * f * f if k_tokens else grid * grid
  vis_tokens = mcfg.num_image_token  # per image, after the pixel shuffle
  vit_remat = _remat_name(mcfg.remat if mcfg.vision_remat is None else mcfg.vision_remat)
  llm_remat = _remat_name(mcfg.remat)

  def layer_path(tower: str, i: int, rest: str) -> str:
    mid = "layers" if mcfg.scan_layers else f"layers/{i}"
    return f"mllm/{tower}/{mid}/{rest}"

  # --- vision tower ---------------------------------------------------------------------
  renderer = trained("renderer/features")
  grad = renderer  # a gradient flows here: something upstream trains
  tok = images * (1 + patches)
  patch_trained = trained("mllm/vision_tower/patch_embedding/kernel")
  c.matmul("vit", images * patches, 3 * mcfg.patch_size ** 2, v.hidden_size, grad_in=grad,
           trained=patch_trained, recompute=False, train=train)
  grad = grad or patch_trained or trained("mllm/vision_tower/position_embeddings")
  d, mlp = v.hidden_size, v.intermediate_size
  for i in range(v.num_layers):
    p = functools.partial(layer_path, "vision_tower", i)
    names = ("attention/q_proj", "attention/k_proj", "attention/v_proj",
             "attention/projection_layer", "mlp/fc1", "mlp/fc2")
    tr = {name: trained(p(name + "/kernel")) for name in names}
    in_layer = grad or any(tr.values()) or any(
        trained(p(x)) for x in ("lambda_1", "lambda_2", "layernorm_before/scale",
                                "layernorm_after/scale"))
    full, dots = in_layer and vit_remat == "full", in_layer and vit_remat == "dots"
    g = grad
    for name in names[:3]:
      c.matmul("vit", tok, d, d, grad_in=g, trained=tr[name], recompute=full, train=train)
    g = g or any(tr[x] for x in names[:3])
    c.attention("vit", images, v.num_heads, 1 + patches, 1 + patches, v.head_dim, grad=g,
                recompute=full or dots, train=train)
    c.matmul("vit", tok, d, d, grad_in=g, trained=tr[names[3]], recompute=full, train=train)
    c.matmul("vit", tok, d, mlp, grad_in=in_layer, trained=tr["mlp/fc1"], recompute=full,
             train=train)
    # fc2's output only joins the residual stream (times the frozen layer scale): the next
    # layer's saved input holds it, so remat does not recompute it.
    l2 = trained(p("lambda_2"))
    c.matmul("vit", tok, mlp, d, grad_in=in_layer, trained=tr["mlp/fc2"],
             recompute=full and l2, train=train)
    grad = in_layer

  # --- projector --------------------------------------------------------------------------
  e = t.hidden_size
  ptoks = images * vis_tokens
  p1 = trained("mllm/multi_modal_projector/linear_1/kernel")
  p2 = trained("mllm/multi_modal_projector/linear_2/kernel")
  c.matmul("projector", ptoks, d * f * f, e, grad_in=grad, trained=p1, recompute=False,
           train=train)
  grad = grad or p1 or trained("mllm/multi_modal_projector/layer_norm/scale")
  c.matmul("projector", ptoks, e, e, grad_in=grad, trained=p2, recompute=False, train=train)
  grad = grad or p2

  # --- decoder ----------------------------------------------------------------------------
  table = "mllm/language_model/embed_tokens"
  grad = grad or trained(table)
  tokens = b * seq
  kv = t.num_kv_heads * t.head_dim
  nh = t.num_heads * t.head_dim
  lora = mcfg.lora
  projections = (("q", "self_attn/q_proj", e, nh), ("k", "self_attn/k_proj", e, kv),
                 ("v", "self_attn/v_proj", e, kv), ("o", "self_attn/o_proj", nh, e),
                 ("gate", "mlp/gate_proj", e, t.intermediate_size),
                 ("up", "mlp/up_proj", e, t.intermediate_size),
                 ("down", "mlp/down_proj", t.intermediate_size, e))
  for i in range(t.num_layers):
    p = functools.partial(layer_path, "language_model", i)
    tr = {short: trained(p(path + "/kernel")) for short, path, _, _ in projections}
    ad = {short: bool(lora and short in lora.targets) and (
        trained(p(path + "/lora_a")) or trained(p(path + "/lora_b")))
        for short, path, _, _ in projections}
    norms = any(trained(p(x)) for x in ("input_layernorm/scale", "post_attention_layernorm/scale",
                                        "self_attn/q_proj/bias", "self_attn/k_proj/bias",
                                        "self_attn/v_proj/bias"))
    in_layer = grad or norms or any(tr.values()) or any(ad.values())
    full, dots = in_layer and llm_remat == "full", in_layer and llm_remat == "dots"
    g = grad
    for short, _, k_in, n_out in projections:
      if short == "o":
        c.attention("llm", b, t.num_heads, seq, seq, t.head_dim, grad=g, recompute=full or dots,
                    train=train)
      last = short == "down"  # joins the residual stream only: not recomputed (see above)
      gi = in_layer if short in ("gate", "up", "down") else g
      c.matmul("llm", tokens, k_in, n_out, grad_in=gi, trained=tr[short],
               recompute=full and not last, train=train)
      if lora and short in lora.targets:
        r = lora.rank
        # x A [m, k] @ [k, r]: its input gradient joins x's; (x A) B [m, r] @ [r, n]: the
        # gradient of x A is needed whenever A trains or x needs one.
        c.matmul("lora", tokens, k_in, r, grad_in=gi, trained=ad[short], recompute=full,
                 train=train)
        c.matmul("lora", tokens, r, n_out, grad_in=gi or ad[short], trained=ad[short],
                 recompute=full and not last, train=train)
      if short in ("q", "k", "v"):
        g = g or tr[short] or ad[short]
    grad = in_layer

  # --- LM head ----------------------------------------------------------------------------
  head = table if t.tie_word_embeddings else "mllm/lm_head"
  chunk = int(config.get("loss_chunk", 0) or 0) if train else 0
  positions = b * (math.ceil((seq - 1) / chunk) * chunk if chunk else seq)
  c.matmul("lm_head", positions, e, t.vocab_size, grad_in=grad, trained=trained(head),
           recompute=bool(chunk), train=train)
  return Count(dict(c.flops))


def describe(n: Count, chips: int = 1) -> str:
  """One line: TFLOP per chip by block and pass."""
  parts = []
  for block in BLOCKS:
    vals = [n.get(block, p) / chips / 1e12 for p in PASSES]
    if any(vals):
      parts.append(f"{block} " + "/".join(f"{x:.2f}" for x in vals))
  return (f"model count {n.total() / chips / 1e12:.2f} TFLOP per chip "
          f"(forward/backward/remat: {', '.join(parts)})")
