"""Greedy decoding with static shapes, one jitted loop per batch.

The prompt sits right-padded in `input_ids int32[B, L]`; step i writes the
argmax token at position `length_b + i` of every unfinished row. Padding after
a row's end never influences it (causal attention, key-padding mask). Frames
are rendered once and reused at every step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def make_generate(graphdef: nnx.GraphDef, rng_vars, *, max_new_tokens: int, stop_id: int):
  """`generate(state, positions, lengths, input_ids, input_mask) -> (ids int32[B, L], new int32[B])`.

  `new[b]` is how many tokens row b generated (up to and including `stop_id`).
  """

  def generate(state, positions, lengths, input_ids, input_mask):
    model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
    frames = model.render(positions, lengths, None)
    b, seq = input_ids.shape
    start = jnp.sum(input_mask, axis=1).astype(jnp.int32)
    rows = jnp.arange(b)

    def body(i, carry):
      ids, mask, done, count = carry
      logits = model.logits_from_frames(frames, ids, mask)
      cur = jnp.minimum(start + i, seq - 1)
      nxt = jnp.argmax(logits[rows, cur - 1], axis=-1).astype(ids.dtype)
      write = (~done) & (start + i < seq)
      ids = ids.at[rows, cur].set(jnp.where(write, nxt, ids[rows, cur]))
      mask = mask.at[rows, cur].set(jnp.where(write, 1, mask[rows, cur]))
      count = count + write.astype(jnp.int32)
      done = done | (write & (nxt == stop_id))
      return ids, mask, done, count

    init = (input_ids, input_mask, jnp.zeros((b,), bool), jnp.zeros((b,), jnp.int32))
    ids, _, _, count = jax.lax.fori_loop(0, max_new_tokens, body, init)
    return ids, count

  return generate
