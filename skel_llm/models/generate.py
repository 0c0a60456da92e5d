"""Jitted generation with a KV cache, and candidate scoring that reuses a shared prefix.

Axis letters: B batch, L prompt tokens, S cache slots (L + new tokens), C candidates,
M candidate tokens, V vocabulary.

Everything has static shapes: the cache holds S = L + max_new_tokens slots, a boolean
`kv_valid[B, S]` says which slots hold real tokens (padding anywhere in the prompt works),
rotary positions count real tokens only (`cumsum(mask) - 1`), and a `while_loop` writes one
token per step into a fixed output buffer (`pad_id` after a stop token).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from skel_llm.models import qwen2
from skel_llm.models.internvl import InternVL


def _positions(mask: jax.Array) -> jax.Array:
  return jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=1) - 1, 0)


def _last_real(x: jax.Array, mask: jax.Array) -> jax.Array:
  """x[b, last index where mask[b] is set] for x float[B, L, ...]."""
  idx = jnp.argmax(jnp.where(mask.astype(bool), jnp.arange(mask.shape[1]), -1), axis=1)
  return jnp.take_along_axis(x, idx.reshape(-1, *([1] * (x.ndim - 1))), axis=1)[:, 0]


def prefill(model: InternVL, input_ids, attention_mask, pixel_values, cache_size: int):
  """Runs the prompt into a fresh cache.

  Returns:
    (float32[B, V] logits after the last real prompt token, cache, kv_valid bool[B, S],
    int32[B] position of the next token).
  """
  b, n = input_ids.shape
  valid = attention_mask.astype(bool)
  x, keep = model.embed_inputs_masked(input_ids, pixel_values)
  cache = qwen2.init_cache(model.config.text, b, cache_size, model.config.compute_dtype)
  # Padded visual tokens (sparse path) keep their positions but are never attended to.
  kv_valid = jnp.zeros((b, cache_size), bool).at[:, :n].set(valid if keep is None
                                                             else valid & keep)
  slots = jnp.arange(cache_size)
  mask = (slots[None, None, :] <= jnp.arange(n)[None, :, None]) & kv_valid[:, None, :]
  hidden, cache = model.language_model(x, _positions(valid), mask, cache, 0)
  logits = model.logits(_last_real(hidden, valid)[:, None])[:, 0]
  return logits, cache, kv_valid, valid.sum(axis=1).astype(jnp.int32)


def decode_step(model: InternVL, token, position, cache, kv_valid, slot):
  """One new token per row: int32[B] token at int32[B] position written into cache `slot`."""
  kv_valid = kv_valid | (jnp.arange(kv_valid.shape[1]) == slot)[None]
  x = model.language_model.embed(token[:, None])
  hidden, cache = model.language_model(x, position[:, None], kv_valid[:, None, :], cache, slot)
  return model.logits(hidden)[:, 0], cache, kv_valid


def _penalise(logits, seen, penalty):
  """transformers' repetition penalty: tokens already in the sequence get logit / penalty when
  positive, logit * penalty when negative (`RepetitionPenaltyLogitsProcessor`)."""
  penalised = jnp.where(logits > 0, logits / penalty, logits * penalty)
  return jnp.where(seen, penalised, logits)


def _select(logits, rng, temperature, top_p, greedy: bool):
  """Next token int32[B]: argmax, or a sample from the temperature-scaled top-p nucleus."""
  if greedy:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits / temperature
  order = jnp.argsort(-logits, axis=-1)
  sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs  # Mass strictly above each candidate.
  sorted_logits = jnp.where(before < top_p, sorted_logits, -jnp.inf)  # Always keeps the top one.
  pick = jax.random.categorical(rng, sorted_logits, axis=-1)
  return jnp.take_along_axis(order, pick[:, None], axis=-1)[:, 0].astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens", "greedy",
                                              "use_cache", "penalise"))
def _generate(graphdef, state, input_ids, attention_mask, pixel_values, rng, temperature, top_p,
              stops, pad_id, penalty, *, max_new_tokens, greedy, use_cache, penalise):
  model = nnx.merge(graphdef, state)
  b, prompt_len = input_ids.shape
  out = jnp.full((b, max_new_tokens), pad_id, jnp.int32)
  vocab = model.config.text.vocab_size
  # Tokens present so far (prompt included, as transformers counts them): bool[B, V]. Only
  # built when a penalty is asked for, so plain greedy decoding carries no [B, V] state.
  seen = None
  if penalise:
    seen = jnp.zeros((b, vocab), jnp.int32).at[jnp.arange(b)[:, None], input_ids].max(
        attention_mask.astype(jnp.int32)) > 0

  def pick(logits, rng, seen):
    if penalise:
      logits = _penalise(logits, seen, penalty)
    token = _select(logits, rng, temperature, top_p, greedy)
    if penalise:
      seen = seen.at[jnp.arange(b), token].set(True)
    return token, seen

  def finish(i, token, done, out):
    token = jnp.where(done, pad_id, token)
    out = jax.lax.dynamic_update_slice(out, token[:, None], (0, i))
    return out, done | jnp.isin(token, stops)

  if use_cache:
    logits, cache, kv_valid, pos = prefill(model, input_ids, attention_mask, pixel_values,
                                           prompt_len + max_new_tokens)
  else:  # Baseline: the whole growing sequence is re-run at every step (static buffer).
    ids = jnp.concatenate([input_ids, jnp.zeros((b, max_new_tokens), jnp.int32)], 1)
    mask = jnp.concatenate([attention_mask.astype(bool),
                            jnp.zeros((b, max_new_tokens), bool)], 1)
    logits = _last_real(model(ids, mask, pixel_values, _positions(mask)), mask)
    cache, kv_valid, pos = (ids, mask), None, None
  rng, sub = jax.random.split(rng)
  token, seen = pick(logits, sub, seen)
  out, done = finish(0, token, jnp.zeros((b,), bool), out)

  def cond(carry):
    i, _, done, *_ = carry
    return (i < max_new_tokens) & ~jnp.all(done)

  def body(carry):
    i, token, done, out, cache, kv_valid, pos, rng, seen = carry
    if use_cache:
      logits, cache, kv_valid = decode_step(model, token, pos, cache, kv_valid, prompt_len + i - 1)
      pos = pos + 1
    else:
      ids, mask = cache
      ids = jax.lax.dynamic_update_slice(ids, token[:, None], (0, prompt_len + i - 1))
      mask = mask | (jnp.arange(mask.shape[1]) == prompt_len + i - 1)[None]
      logits = _last_real(model(ids, mask, pixel_values, _positions(mask)), mask)
      cache = (ids, mask)
    rng, sub = jax.random.split(rng)
    token, seen = pick(logits, sub, seen)
    out, done = finish(i, token, done, out)
    return i + 1, token, done, out, cache, kv_valid, pos, rng, seen

  carry = (jnp.int32(1), token, done, out, cache, kv_valid, pos, rng, seen)
  _, _, done, out, *_ = jax.lax.while_loop(cond, body, carry)
  return out


def generate(model: InternVL, input_ids, attention_mask=None, pixel_values=None, *,
             max_new_tokens: int = 16, temperature: float = 0.0, top_p: float = 1.0,
             stop_tokens: tuple[int, ...] = (), pad_id: int = 0, rng: jax.Array | None = None,
             use_cache: bool = True, repetition_penalty: float = 1.0) -> jax.Array:
  """Generates up to `max_new_tokens` per row.

  Args:
    model: the InternVL module.
    input_ids: int32[B, L] prompts (`<IMG_CONTEXT>` placeholders included); padding may be on
      either side, as given by `attention_mask`.
    attention_mask: int/bool[B, L] or None (no padding).
    pixel_values: None, float32[N, 3, H, W] or float32[B, F, 3, H, W].
    max_new_tokens: length of the output buffer.
    temperature: 0 = greedy; otherwise sampling at this temperature.
    top_p: nucleus mass kept when sampling.
    stop_tokens: ids that end a row (the stop token is emitted, `pad_id` follows).
    pad_id: filler after a row stopped.
    rng: PRNG key for sampling.
    use_cache: False re-runs the full sequence at each step (the benchmark's baseline).
    repetition_penalty: > 1 discourages every token already in the prompt or the reply, as
      transformers' `repetition_penalty` does (the authors evaluate with 1.05); 1 is off.

  Returns:
    int32[B, max_new_tokens] new tokens.
  """
  if attention_mask is None:
    attention_mask = jnp.ones(input_ids.shape, bool)
  if not repetition_penalty > 0:
    raise ValueError(f"generate: repetition_penalty must be positive, got {repetition_penalty}")
  if rng is None:
    if temperature > 0:
      raise ValueError("generate: sampling (temperature > 0) needs an rng key")
    rng = jax.random.key(0)
  graphdef, state = nnx.split(model)
  return _generate(graphdef, state, jnp.asarray(input_ids, jnp.int32),
                   jnp.asarray(attention_mask), pixel_values, rng,
                   jnp.float32(max(temperature, 1e-6)), jnp.float32(top_p),
                   jnp.asarray(tuple(stop_tokens) or (-1,), jnp.int32), jnp.int32(pad_id),
                   jnp.float32(repetition_penalty), max_new_tokens=max_new_tokens,
                   greedy=temperature <= 0, use_cache=use_cache,
                   penalise=repetition_penalty != 1.0)


# --- candidate scoring --------------------------------------------------------------------

def _token_logprobs(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """log p(target) float32[...] from float32[..., V] logits."""
  picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  return picked - jax.nn.logsumexp(logits, axis=-1)


def _per_sample_pixels(pixel_values, batch: int):
  """float[B, F, 3, H, W] from either pixel layout (4-D: N = B * F images, sample-major)."""
  if pixel_values is None or pixel_values.ndim == 5:
    return pixel_values
  if pixel_values.shape[0] % batch:
    raise ValueError(f"pixel_values: {pixel_values.shape[0]} images do not split evenly over "
                     f"{batch} prefixes; pass float[B, F, 3, H, W]")
  return pixel_values.reshape(batch, -1, *pixel_values.shape[1:])


@functools.partial(jax.jit, static_argnums=0)
def _score_cached(graphdef, state, prefix_ids, prefix_mask, pixel_values, cand_ids, cand_mask):
  model = nnx.merge(graphdef, state)
  b, lp = prefix_ids.shape
  _, c, m = cand_ids.shape
  logits0, cache, kv_valid, pos = prefill(model, prefix_ids, prefix_mask, pixel_values, lp + m)
  first = _token_logprobs(logits0[:, None, :], cand_ids[:, :, 0])  # [B, C]
  rep = lambda x: jnp.repeat(x, c, axis=0)  # noqa: E731  [B, ...] -> [B*C, ...]
  cache = jax.tree.map(rep, cache)
  cmask = cand_mask.reshape(b * c, m).astype(bool)
  kv_valid = rep(kv_valid).at[:, lp:].set(cmask)
  slots = jnp.arange(lp + m)
  mask = (slots[None, None, :] < lp) | (slots[None, None, :] <= lp + jnp.arange(m)[None, :, None])
  mask = mask & kv_valid[:, None, :]
  positions = rep(pos)[:, None] + _positions(cmask)
  ids = cand_ids.reshape(b * c, m)
  hidden, _ = model.language_model(model.language_model.embed(ids), positions, mask, cache, lp)
  rest = _token_logprobs(model.logits(hidden[:, :-1]), ids[:, 1:]).reshape(b, c, m - 1)
  logp = jnp.concatenate([first[..., None], rest], axis=-1)
  return jnp.sum(jnp.where(cand_mask.astype(bool), logp, 0.0), axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def _score_full(graphdef, state, prefix_ids, prefix_mask, pixel_values, cand_ids, cand_mask):
  model = nnx.merge(graphdef, state)
  b, lp = prefix_ids.shape
  _, c, m = cand_ids.shape
  rep = lambda x: jnp.repeat(x, c, axis=0)  # noqa: E731
  ids = jnp.concatenate([rep(prefix_ids), cand_ids.reshape(b * c, m)], axis=1)
  mask = jnp.concatenate([rep(prefix_mask).astype(bool),
                          cand_mask.reshape(b * c, m).astype(bool)], axis=1)
  px = None if pixel_values is None else rep(pixel_values)
  hidden = model.hidden_states(ids, mask, px, _positions(mask))
  prev = jnp.concatenate([_last_real(hidden[:, :lp], mask[:, :lp])[:, None],
                          hidden[:, lp:-1]], axis=1)
  logp = _token_logprobs(model.logits(prev), ids[:, lp:]).reshape(b, c, m)
  return jnp.sum(jnp.where(cand_mask.astype(bool), logp, 0.0), axis=-1)


def score_candidates(model: InternVL, prefix_ids, prefix_mask, pixel_values, cand_ids, cand_mask,
                     reuse_prefix: bool = True) -> jax.Array:
  """Sum of log-probabilities of each candidate continuation given its row's prefix.

  Args:
    model: the InternVL module.
    prefix_ids: int32[B, L] shared prompts (any padding, given by `prefix_mask`).
    prefix_mask: int/bool[B, L].
    pixel_values: None, float32[B * F, 3, H, W] or float32[B, F, 3, H, W].
    cand_ids: int32[B, C, M] candidates, right-padded.
    cand_mask: int/bool[B, C, M], 1 on real candidate tokens.
    reuse_prefix: True runs the prefix (and the images) once and scores all candidates from
      its KV cache; False re-runs prefix + candidate for each candidate (reference/baseline).

  Returns:
    float32[B, C] log p(candidate | prefix).
  """
  pixel_values = _per_sample_pixels(pixel_values, prefix_ids.shape[0])
  graphdef, state = nnx.split(model)
  fn = _score_cached if reuse_prefix else _score_full
  return fn(graphdef, state, jnp.asarray(prefix_ids, jnp.int32), jnp.asarray(prefix_mask),
            pixel_values, jnp.asarray(cand_ids, jnp.int32), jnp.asarray(cand_mask))
