"""Frame selection and velocities inside jit, on padded fixed-length sequences.

Glossary: B clips, T padded length, n selected frames, P persons, J joints.

Same rules as the host (numpy) versions in `skel_llm.skeleton.sampling`, with
the true length `length` a traced int32 so that every clip of a batch has the
same static shape:

* evaluation: segment midpoints `floor((i + 0.5) T / n)`, computed in exact
  integer arithmetic as `((2 i + 1) T) // (2 n)`;
* training: one uniform index per segment `[floor(i T / n), floor((i+1) T / n))`;
  with `T < n`, n indices drawn with replacement and sorted;
* velocities on the full-rate sequence, `v[t] = p[min(t + s, T - 1)] - p[t]`,
  taken at the selected frames.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def segment_indices(length: jax.Array, n: int, rng: jax.Array | None = None) -> jax.Array:
  """int32[n] indices into a sequence of true length `length` (int32[], >= 1).

  rng None: segment midpoints (evaluation); else one random index per segment.
  """
  length = jnp.maximum(jnp.asarray(length, jnp.int32), 1)
  i = jnp.arange(n, dtype=jnp.int32)
  if rng is None:
    return ((2 * i + 1) * length) // (2 * n)
  k_seg, k_rep = jax.random.split(rng)
  lo = (i * length) // n
  hi = ((i + 1) * length) // n
  u = jax.random.uniform(k_seg, (n,))
  per_segment = jnp.minimum(lo + jnp.floor(u * (hi - lo)).astype(jnp.int32), length - 1)
  short = jnp.sort(jax.random.randint(k_rep, (n,), 0, length))
  return jnp.where(length < n, short, per_segment)


def select_frames(positions: jax.Array, length: jax.Array, n: int = 12, *,
                  rng: jax.Array | None = None, stride: int = 4):
  """(poses float32[n, P, J, 3], vels float32[n, P, J, 3], indices int32[n]) of one clip.

  Args:
    positions: float32[T, P, J, 3], padded past `length` (padding is never read).
    length: int32[] true number of frames.
    n: frames to select.
    rng: None for evaluation (midpoints), a key for training.
    stride: velocity stride on the full-rate sequence.
  """
  length = jnp.maximum(jnp.asarray(length, jnp.int32), 1)
  idx = segment_indices(length, n, rng)
  ahead = jnp.minimum(idx + stride, length - 1)
  poses = positions[idx]
  return poses, positions[ahead] - poses, idx


def select_frames_batch(positions: jax.Array, lengths: jax.Array, n: int = 12, *,
                        rng: jax.Array | None = None, stride: int = 4):
  """Batched `select_frames`: float32[B, T, P, J, 3], int32[B] -> [B, n, ...] (one key per clip)."""
  if rng is None:
    return jax.vmap(lambda p, t: select_frames(p, t, n, stride=stride))(positions, lengths)
  keys = jax.random.split(rng, positions.shape[0])
  return jax.vmap(lambda p, t, k: select_frames(p, t, n, rng=k, stride=stride))(
      positions, lengths, keys)
