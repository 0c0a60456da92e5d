"""Qwen2.5 decoder: grouped-query attention with qkv bias, rotary embeddings, RMSNorm, SwiGLU.

Axis letters: B batch, L new tokens, S cache slots, D width, N heads, K kv heads, H head dim.

The KV cache is a plain pytree (a list of per-layer dicts with `k`, `v`: float[B, S, K, H]);
the caller passes the slot at which the L new tokens are written (`cache_index`) and the
boolean mask float[B, L, S] saying which slots each new token may attend to. Shapes never
depend on data, so prefill and every decode step are jitted once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from skel_llm.models import layers, partitioning as part
from skel_llm.models.config import InternVLConfig, LoRAConfig, TextConfig

Cache = list[dict[str, jax.Array]]


def rope_tables(positions: jax.Array, head_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
  """cos, sin float32[B, L, H] for int[B, L] positions (halves repeated, as transformers)."""
  inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  freqs = positions.astype(jnp.float32)[..., None] * inv_freq
  emb = jnp.concatenate([freqs, freqs], axis=-1)
  return jnp.cos(emb), jnp.sin(emb)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
  """x float[B, L, N, H] rotated by the per-position angles (rotate-half convention)."""
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  cos, sin = cos[:, :, None].astype(x.dtype), sin[:, :, None].astype(x.dtype)
  return x * cos + rotated * sin


def _lora_for(lora: LoRAConfig | None, name: str) -> LoRAConfig | None:
  return lora if lora is not None and name in lora.targets else None


class Attention(nnx.Module):

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    t = config.text
    self.text = t
    mk = functools.partial(layers.Linear, dtype=config.compute_dtype,
                           param_dtype=config.weight_dtype, rngs=rngs)
    lora = config.lora
    d, nh, kh = t.hidden_size, t.num_heads * t.head_dim, t.num_kv_heads * t.head_dim
    self.q_proj = mk(d, nh, axes=("embed", "heads"), use_bias=True, lora=_lora_for(lora, "q"))
    self.k_proj = mk(d, kh, axes=("embed", "kv_heads"), use_bias=True, lora=_lora_for(lora, "k"))
    self.v_proj = mk(d, kh, axes=("embed", "kv_heads"), use_bias=True, lora=_lora_for(lora, "v"))
    self.o_proj = mk(nh, d, axes=("heads", "embed"), use_bias=False, lora=_lora_for(lora, "o"))

  def __call__(self, x, cos, sin, mask, cache=None, cache_index=None):
    """x float[B, L, D]; mask bool[B, L, S]; cache {'k','v': float[B, S, K, H]} or None."""
    t = self.text
    b, n, _ = x.shape
    q = self.q_proj(x).reshape(b, n, t.num_heads, t.head_dim)
    k = self.k_proj(x).reshape(b, n, t.num_kv_heads, t.head_dim)
    v = self.v_proj(x).reshape(b, n, t.num_kv_heads, t.head_dim)
    q = part.constrain(q, (part.BATCH, part.LENGTH, part.HEADS, None))
    k = part.constrain(k, (part.BATCH, part.LENGTH, part.KV_HEADS, None))
    v = part.constrain(v, (part.BATCH, part.LENGTH, part.KV_HEADS, None))
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    if cache is not None:
      start = (0, cache_index, 0, 0)
      k_all = jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype), start)
      v_all = jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype), start)
      cache = {"k": k_all, "v": v_all}
      k, v = k_all.astype(q.dtype), v_all.astype(q.dtype)
    out = layers.attention(q, k, v, mask, t.head_dim ** -0.5)
    out = part.constrain(out.reshape(b, n, -1), (part.BATCH, part.LENGTH, part.HEADS))
    return part.constrain(self.o_proj(out), part.RESIDUAL), cache


class MLP(nnx.Module):
  """SwiGLU: down(act(gate(x)) * up(x))."""

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    t = config.text
    lora = config.lora
    mk = functools.partial(layers.Linear, dtype=config.compute_dtype,
                           param_dtype=config.weight_dtype, rngs=rngs, use_bias=False)
    self.gate_proj = mk(t.hidden_size, t.intermediate_size, axes=("embed", "mlp"),
                        lora=_lora_for(lora, "gate"))
    self.up_proj = mk(t.hidden_size, t.intermediate_size, axes=("embed", "mlp"),
                      lora=_lora_for(lora, "up"))
    self.down_proj = mk(t.intermediate_size, t.hidden_size, axes=("mlp", "embed"),
                        lora=_lora_for(lora, "down"))
    self.act = layers.activation(t.hidden_act)

  def __call__(self, x):
    h = part.constrain(self.act(self.gate_proj(x)) * self.up_proj(x),
                       (part.BATCH, part.LENGTH, part.MLP))
    return part.constrain(self.down_proj(h), part.RESIDUAL)


class DecoderLayer(nnx.Module):

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    t = config.text
    norm = functools.partial(layers.RMSNorm, t.hidden_size, axis_name="embed", eps=t.rms_norm_eps,
                             dtype=config.compute_dtype, param_dtype=config.weight_dtype)
    self.self_attn = Attention(config, rngs)
    self.mlp = MLP(config, rngs)
    self.input_layernorm = norm()
    self.post_attention_layernorm = norm()

  def __call__(self, x, cos, sin, mask, cache=None, cache_index=None):
    x = part.constrain(x, part.RESIDUAL)
    h, cache = self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, cache_index)
    x = part.constrain(x + h, part.RESIDUAL)
    return part.constrain(x + self.mlp(self.post_attention_layernorm(x)), part.RESIDUAL), cache


class TextModel(nnx.Module):
  """Embedding table, decoder layers and the final norm (transformers' `Qwen2Model`)."""

  def __init__(self, config: InternVLConfig, rngs: nnx.Rngs):
    t = config.text
    self.config = config
    self.embed_tokens = layers.param(rngs, (t.vocab_size, t.hidden_size), ("vocab", "embed"),
                                     config.weight_dtype)
    made = [DecoderLayer(config, rngs) for _ in range(t.num_layers)]
    # scan_layers: one DecoderLayer whose variables are stacked [num_layers, ...].
    self.layers = layers.stack_layers(made) if config.scan_layers else nnx.List(made)
    self.norm = layers.RMSNorm(t.hidden_size, axis_name="embed", eps=t.rms_norm_eps,
                               dtype=config.compute_dtype, param_dtype=config.weight_dtype)

  def embed(self, input_ids: jax.Array) -> jax.Array:
    """int[B, L] -> float[B, L, D] (compute dtype)."""
    # The table's width is gathered first (FSDP splits it), so every token's row is looked up
    # where its batch row lives instead of moving looked-up activations afterwards.
    table = part.constrain(self.embed_tokens[...], (part.VOCAB, None))
    x = jnp.take(table, input_ids, axis=0).astype(self.config.compute_dtype)
    return part.constrain(x, part.RESIDUAL)

  def __call__(self, x: jax.Array, positions: jax.Array, mask: jax.Array,
               cache: Cache | None = None, cache_index: jax.Array | int | None = None
               ) -> tuple[jax.Array, Cache | None]:
    """Decoder stack.

    Args:
      x: float[B, L, D] input embeddings.
      positions: int[B, L] rotary positions.
      mask: bool[B, L, S] attention mask (S = L without cache, the cache size with one).
      cache: per-layer {'k','v': float[B, S, K, H]} or None.
      cache_index: first cache slot written by these L tokens.

    Returns:
      (float[B, L, D] final-normed hidden states, updated cache or None).
    """
    t = self.config.text
    cos, sin = rope_tables(positions, t.head_dim, t.rope_theta)
    new_cache = [] if cache is not None else None
    if self.config.scan_layers and cache is None:
      x = layers.scan_layers(self.layers, self.config.remat, x, cos, sin, mask)
      return part.constrain(self.norm(x), part.RESIDUAL), None
    stack = (lambda: (layers.layer_of(self.layers, i) for i in range(t.num_layers))) \
        if self.config.scan_layers else (lambda: iter(self.layers))
    for i, layer in enumerate(stack()):
      if cache is not None:
        x, c = layer(x, cos, sin, mask, cache[i], cache_index)
        new_cache.append(c)
      else:
        x, _ = layers.call_layer(layer, self.config.remat, x, cos, sin, mask)
    return part.constrain(self.norm(x), part.RESIDUAL), new_cache


def init_cache(text: TextConfig, batch: int, size: int, dtype: jnp.dtype) -> Cache:
  """Zero KV cache with `size` slots per sequence."""
  shape = (batch, size, text.num_kv_heads, text.head_dim)
  return [{"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
          for _ in range(text.num_layers)]
