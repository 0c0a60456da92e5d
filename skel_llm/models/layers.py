"""Building blocks shared by InternViT, the projector and Qwen2.5.

Every parameter is an `nnx.Param` (adapters: `nnx.LoRAParam`) carrying its logical axis names
in the `out_sharding` metadata; variables are created with `eager_sharding=False`, so the
model builds without a mesh and the trainer maps logical names to mesh axes afterwards
(`nnx.get_partition_spec(state)` gives the logical specs).

Axis letters: B batch, L query tokens, S key tokens, D width, N heads, K kv heads, G = N / K,
H head dim.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from skel_llm.models.config import LoRAConfig

INIT_STD = 0.02  # transformers' initializer_range for both towers.


def param(rngs: nnx.Rngs | None, shape: tuple[int, ...], axes: tuple[str | None, ...],
          dtype: jnp.dtype, init: str = "normal", value: float = 0.0,
          kind: type[nnx.Variable] = nnx.Param) -> nnx.Variable:
  """A variable with logical axis names `axes` (one per dimension)."""
  if len(axes) != len(shape):
    raise ValueError(f"param: {len(axes)} axis names {axes} for shape {shape}")
  if init == "normal":
    x = INIT_STD * jax.random.normal(rngs.params(), shape, jnp.float32)
  elif init == "zeros":
    x = jnp.zeros(shape, jnp.float32)
  elif init == "constant":
    x = jnp.full(shape, value, jnp.float32)
  else:
    raise ValueError(f"param: unknown init {init!r}")
  return kind(x.astype(dtype), out_sharding=tuple(axes), eager_sharding=False)


class Linear(nnx.Module):
  """y = x W + b, W float[in, out], with an optional low-rank adapter y += s * drop(x) A B."""

  def __init__(self, in_features: int, out_features: int, *, axes: tuple[str, str],
               use_bias: bool, dtype: jnp.dtype, param_dtype: jnp.dtype, rngs: nnx.Rngs,
               lora: LoRAConfig | None = None):
    self.dtype = dtype
    self.kernel = param(rngs, (in_features, out_features), axes, param_dtype)
    self.bias = param(rngs, (out_features,), (axes[1],), param_dtype, "zeros") if use_bias else None
    self.lora_scale = lora.scale if lora else 0.0
    if lora:
      # A random, B zero: the adapted model starts equal to the base model.
      self.lora_a = param(rngs, (in_features, lora.rank), (axes[0], "lora_rank"), param_dtype,
                          kind=nnx.LoRAParam)
      self.lora_b = param(rngs, (lora.rank, out_features), ("lora_rank", axes[1]), param_dtype,
                          "zeros", kind=nnx.LoRAParam)
      # Its own 'dropout' stream, keyed from the init stream: distinct masks per adapter.
      self.lora_dropout = (nnx.Dropout(lora.dropout, deterministic=True,
                                       rngs=nnx.Rngs(dropout=rngs.params()))
                           if lora.dropout > 0 else None)
    else:
      self.lora_a = self.lora_b = self.lora_dropout = None

  def __call__(self, x: jax.Array) -> jax.Array:
    """float[..., in] -> float[..., out] in the compute dtype."""
    x = x.astype(self.dtype)
    y = x @ self.kernel[...].astype(self.dtype)
    if self.bias is not None:
      y = y + self.bias[...].astype(self.dtype)
    if self.lora_a is not None:
      h = self.lora_dropout(x) if self.lora_dropout is not None else x
      h = (h @ self.lora_a[...].astype(self.dtype)) @ self.lora_b[...].astype(self.dtype)
      y = y + self.lora_scale * h
    return y

  def merge_lora(self) -> None:
    """Folds the adapter into the kernel (W += s A B) and zeroes B; outputs are unchanged."""
    if self.lora_a is None:
      return
    a = self.lora_a[...].astype(jnp.float32)
    b = self.lora_b[...].astype(jnp.float32)
    w = self.kernel[...]
    self.kernel[...] = (w.astype(jnp.float32) + self.lora_scale * (a @ b)).astype(w.dtype)
    self.lora_b[...] = jnp.zeros_like(self.lora_b[...])


class LayerNorm(nnx.Module):
  """torch.nn.LayerNorm semantics (biased variance), computed in float32."""

  def __init__(self, dim: int, *, axis_name: str, eps: float, dtype: jnp.dtype,
               param_dtype: jnp.dtype):
    self.eps, self.dtype = eps, dtype
    self.scale = param(None, (dim,), (axis_name,), param_dtype, "constant", 1.0)
    self.bias = param(None, (dim,), (axis_name,), param_dtype, "zeros")

  def __call__(self, x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    mean = x32.mean(-1, keepdims=True)
    var = jnp.square(x32 - mean).mean(-1, keepdims=True)
    y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
    y = y * self.scale[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
    return y.astype(self.dtype)


class RMSNorm(nnx.Module):
  """Qwen2 / T5 RMSNorm: normalise in float32, cast back, then multiply by the weight."""

  def __init__(self, dim: int, *, axis_name: str, eps: float, dtype: jnp.dtype,
               param_dtype: jnp.dtype):
    self.eps, self.dtype = eps, dtype
    self.scale = param(None, (dim,), (axis_name,), param_dtype, "constant", 1.0)

  def __call__(self, x: jax.Array) -> jax.Array:
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.square(x32).mean(-1, keepdims=True) + self.eps)
    return self.scale[...].astype(self.dtype) * y.astype(self.dtype)


def make_norm(kind: str, dim: int, **kwargs) -> LayerNorm | RMSNorm:
  return LayerNorm(dim, **kwargs) if kind == "layer_norm" else RMSNorm(dim, **kwargs)


def activation(name: str):
  """transformers ACT2FN names -> jax functions ("gelu" is the exact erf form)."""
  table = {
      "gelu": lambda x: jax.nn.gelu(x, approximate=False),
      "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
      "silu": jax.nn.silu,
      "swish": jax.nn.silu,
  }
  if name not in table:
    raise ValueError(f"activation: unsupported {name!r}; expected one of {sorted(table)}")
  return table[name]


def remat_policy(remat: bool | str):
  """None (no remat) or the `jax.checkpoint` policy of a `config.REMAT_NAMES` entry."""
  name = {False: "none", True: "full"}.get(remat, remat) if isinstance(remat, bool) else remat
  if name == "none":
    return None
  if name == "full":
    return jax.checkpoint_policies.nothing_saveable
  if name == "dots":
    # Weight matmuls (no batch dimension in the contraction) are kept; attention's batched
    # q.k / p.v products, norms and activations are recomputed.
    return jax.checkpoint_policies.dots_with_no_batch_dims_saveable
  raise ValueError(f"remat policy {remat!r}: expected a bool or one of none, full, dots")


def call_layer(layer: nnx.Module, remat: bool | str, *args):
  """`layer(*args)`, rematerialised in the backward pass under the named policy."""
  policy = remat_policy(remat)
  if policy is None:
    return layer(*args)
  return nnx.remat(lambda mod, *a: mod(*a), policy=policy)(layer, *args)


LAYERS = "layers"  # logical name of the leading axis of stacked (scanned) layer variables


def stack_layers(mods: list[nnx.Module]) -> nnx.Module:
  """`mods[0]` with each variable's value replaced by the stack of all `mods`' values.

  The copies were built one after another from the same rng streams, so the stacked
  variables hold exactly what the unrolled list would (the converter and the tests rely on
  it). Each variable's logical axes gain a leading `LAYERS` name, which no sharding rule
  maps: every device holds its share of every layer.
  """
  def variables(m):
    return {path: node for path, node in nnx.iter_graph(m) if isinstance(node, nnx.Variable)}
  first, rest = variables(mods[0]), [variables(m) for m in mods[1:]]
  for path, var in first.items():
    var.set_value(jnp.stack([var.get_value()] + [r[path].get_value() for r in rest]))
    names = var.get_metadata().get("out_sharding")
    if names is not None:
      var.set_metadata(out_sharding=(LAYERS,) + tuple(names))
  return mods[0]


def scan_layers(stack: nnx.Module, remat: bool | str, x: jax.Array, *args) -> jax.Array:
  """`x` through every layer of a `stack_layers` stack in order with `jax.lax.scan`.

  Each layer is called as `layer(x, *args)` and returns x or (x, ignored); the body is
  rematerialised under the `remat` policy. One layer is traced and compiled whatever the
  depth.
  """
  graphdef, state = nnx.split(stack)

  def body(carry, layer_state):
    out = nnx.merge(graphdef, layer_state)(carry, *args)
    return (out[0] if isinstance(out, tuple) else out), None
  policy = remat_policy(remat)
  if policy is not None:
    body = jax.checkpoint(body, policy=policy, prevent_cse=False)
  x, _ = jax.lax.scan(body, x, state)
  return x


def layer_of(stack: nnx.Module, i: int) -> nnx.Module:
  """Layer `i` of a `stack_layers` stack as a module of its own (slices of the variables)."""
  graphdef, state = nnx.split(stack)
  return nnx.merge(graphdef, jax.tree.map(lambda a: a[i], state))


def attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None,
              scale: float) -> jax.Array:
  """Grouped-query softmax attention.

  Args:
    q: float[B, L, N, H].
    k: float[B, S, K, H] with N a multiple of K (query head n uses kv head n // (N / K)).
    v: float[B, S, K, H].
    mask: bool[B, L, S] (True = may attend) or None.
    scale: logit multiplier (H ** -0.5).

  Returns:
    float[B, L, N, H] in q's dtype; softmax in float32. Rows with no allowed key give the
    mean of v (no NaN), which only happens at padding queries.
  """
  b, lq, n, h = q.shape
  kv = k.shape[2]
  # [B, K, G, L, H] x [B, K, S, H]: plain batched matmuls, which XLA:CPU runs fastest.
  qg = q.reshape(b, lq, kv, n // kv, h).transpose(0, 2, 3, 1, 4)
  kt, vt = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
  logits = jnp.einsum("bkglh,bksh->bkgls", qg, kt).astype(jnp.float32) * scale
  if mask is not None:
    logits = jnp.where(mask[:, None, None], logits, jnp.finfo(jnp.float32).min)
  # Softmax with the normalisation applied after the value product (H numbers per query
  # instead of S); the max shift carries no gradient (softmax is shift-invariant).
  shift = jax.lax.stop_gradient(logits.max(axis=-1, keepdims=True))
  weights = jnp.exp(logits - shift)
  total = weights.sum(axis=-1, keepdims=True)
  out = jnp.einsum("bkgls,bksh->bkglh", weights.astype(v.dtype), vt)
  out = (out.astype(jnp.float32) / total).astype(v.dtype)
  return out.transpose(0, 3, 1, 2, 4).reshape(b, lq, n, h)
