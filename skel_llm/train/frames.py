"""Frame selection and velocities inside the jitted step (static shapes, traced lengths).

Mirrors `skel_llm.skeleton.sampling` (its numpy twin, used on the host): n
frames by segment sampling of the valid prefix `[0, length)` of a zero-padded
sequence (midpoints for evaluation, one random index per segment in training,
sorted draws with replacement when length < n), and velocities as stride-s
forward differences on the full-rate sequence, `v[t] = p[min(t + s, length - 1)] - p[t]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def segment_indices(length: jax.Array, n: int, rng: jax.Array | None) -> jax.Array:
  """int32[n] frame indices into a sequence of traced `length` (>= 1)."""
  length = jnp.maximum(length.astype(jnp.int32), 1)
  if rng is None:
    # Integer arithmetic as in numpy's floor((i + 0.5) * T / n) = floor((2i + 1) T / 2n).
    return ((2 * jnp.arange(n, dtype=jnp.int32) + 1) * length) // (2 * n)
  k_seg, k_rep = jax.random.split(rng)
  edges = (jnp.arange(n + 1, dtype=jnp.int32) * length) // n
  u = jax.random.uniform(k_seg, (n,))
  seg = edges[:-1] + jnp.floor(u * (edges[1:] - edges[:-1]).astype(jnp.float32)).astype(jnp.int32)
  rep = jnp.sort(jax.random.randint(k_rep, (n,), 0, length))
  return jnp.where(length < n, rep, seg).astype(jnp.int32)


def select(positions: jax.Array, length: jax.Array, n: int, rng: jax.Array | None,
           stride: int = 4) -> tuple[jax.Array, jax.Array]:
  """(poses, vels) float32[n, P, J, 3] of one zero-padded float32[T, P, J, 3] sequence."""
  idx = segment_indices(length, n, rng)
  ahead = jnp.minimum(idx + stride, jnp.maximum(length - 1, 0))
  poses = positions[idx]
  return poses, positions[ahead] - poses


def select_batch(positions: jax.Array, lengths: jax.Array, n: int, rng: jax.Array | None,
                 stride: int = 4) -> tuple[jax.Array, jax.Array]:
  """Batched `select`: float32[B, T, P, J, 3], int32[B] -> two float32[B, n, P, J, 3]."""
  b = positions.shape[0]
  if rng is None:
    return jax.vmap(lambda p, t: select(p, t, n, None, stride))(positions, lengths)
  keys = jax.random.split(rng, b)
  return jax.vmap(lambda p, t, k: select(p, t, n, k, stride))(positions, lengths, keys)
