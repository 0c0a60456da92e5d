"""Temporal sampling, velocities and normalisation of skeleton sequences.

Conventions follow ../shared/data/draction_reference/README.md: evaluation
frames are segment midpoints `floor((i + 0.5) * T / n)`; training draws one
random index per segment; velocities are forward differences with a stride on
the full-rate sequence, `v[t] = p[min(t + s, T - 1)] - p[t]`.
"""

from __future__ import annotations

import numpy as np


def segment_indices(num_frames: int, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
  """int64[n] frame indices: segment midpoints, or one random index per segment.

  With `num_frames < n` and an rng, indices are drawn with replacement and
  sorted; the midpoint rule already repeats frames in that case.
  """
  if num_frames < 1:
    raise ValueError(f"cannot sample {n} frames from an empty sequence")
  if rng is None:
    return np.floor((np.arange(n) + 0.5) * num_frames / n).astype(np.int64)
  if num_frames < n:
    return np.sort(rng.integers(0, num_frames, size=n)).astype(np.int64)
  edges = np.floor(np.arange(n + 1) * num_frames / n).astype(np.int64)
  return (edges[:-1] + np.floor(rng.random(n) * (edges[1:] - edges[:-1]))).astype(np.int64)


def velocities(positions: np.ndarray, stride: int = 4) -> np.ndarray:
  """Forward differences `p[min(t + stride, T - 1)] - p[t]` along axis 0."""
  positions = np.asarray(positions)
  t = positions.shape[0]
  ahead = np.minimum(np.arange(t) + stride, t - 1)
  return positions[ahead] - positions


def select_frames(positions: np.ndarray, n: int = 12, *, rng: np.random.Generator | None = None,
                  stride: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(poses, vels, indices): n frames of a [T, ...] sequence and their velocities."""
  idx = segment_indices(np.shape(positions)[0], n, rng)
  vel = velocities(positions, stride)
  return np.asarray(positions)[idx], vel[idx], idx


def depth_shift(positions: np.ndarray, threshold: float = 0.5, shift: float = 1.0) -> np.ndarray:
  """Add `shift` to z of present skeletons when their median z is below `threshold`.

  A skeleton (one person in one frame) is present when any coordinate is
  non-zero; absent ones stay all zero.
  """
  positions = np.asarray(positions, np.float32)
  present = np.any(positions != 0, axis=(-1, -2))  # [T, P]
  if not present.any():
    return positions
  z = positions[..., 2][present]
  if np.median(z) >= threshold:
    return positions
  out = positions.copy()
  out[..., 2] = np.where(present[..., None], out[..., 2] + shift, out[..., 2])
  return out


def normalise(positions: np.ndarray, *, root: int, center: bool = True, scale: bool = False,
              valid: np.ndarray | None = None) -> np.ndarray:
  """Optional centring on the first valid root position and unit-scale normalisation.

  Args:
    positions: float32[T, P, J, 3].
    root: root joint index used for centring.
    center: subtract the mean root position of person 0 over valid frames.
    scale: divide by the mean distance of valid joints to that centre.
    valid: float32[T, P, J] mask; defaults to "any non-zero coordinate".
  """
  positions = np.asarray(positions, np.float32)
  if valid is None:
    valid = np.any(positions != 0, axis=-1).astype(np.float32)
  out = positions.copy()
  root_ok = valid[:, 0, root] > 0
  if not root_ok.any():
    return out
  origin = positions[root_ok, 0, root].mean(axis=0)
  mask = valid[..., None] > 0
  if center:
    out = np.where(mask, out - origin, out)
  if scale:
    ref = out if center else out - origin
    d = np.linalg.norm(ref, axis=-1)[valid > 0]
    s = float(d.mean()) if d.size else 1.0
    if s > 0:
      out = np.where(mask, out / s, out)
  return out
