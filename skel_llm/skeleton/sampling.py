"""Temporal sampling, velocities and normalisation of skeleton sequences.

Conventions follow docs/method.md §2: evaluation
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


def _view_joints(topo) -> tuple[list[int], list[int], list[int], list[int]]:
  """(left shoulders, right shoulders, left hips, right hips) joint indices of a topology."""
  names = topo.joint_names
  def find(*cands):
    out = [names.index(c) for c in cands if c in names]
    if not out:
      raise ValueError(f"topology {topo.name}: no joint named any of {cands}; pass joints=")
    return out[:1]
  return (find("left_shoulder"), find("right_shoulder"), find("left_hip"), find("right_hip"))


def view_normalise(positions: np.ndarray, topo, *, valid: np.ndarray | None = None,
                   joints: tuple | None = None) -> np.ndarray:
  """Rotates and translates a 3D sequence into a body-centred view.

  Reference: person 0 in the first frame where its shoulders and hips are
  valid. Its hip midpoint becomes the origin; +y points from the hip midpoint
  to the shoulder midpoint; +x points from the left to the right side
  (shoulders plus hips, made orthogonal to y); z = x cross y. Every person and
  frame gets the same rigid transform, so relative motion is kept. Invalid
  joints stay zero.

  Args:
    positions: float32[T, P, J, 3] (3D; 2D data has no view to normalise).
    topo: a `Topology` (or registry name) with left/right shoulder and hip
      joints, or any topology together with `joints`.
    valid: float32[T, P, J]; defaults to "any non-zero coordinate".
    joints: optional (left_shoulders, right_shoulders, left_hips, right_hips)
      index lists, e.g. for BVH skeletons.

  Returns:
    float32[T, P, J, 3].
  """
  from skel_llm.skeleton import topology as topology_lib
  if isinstance(topo, str):
    topo = topology_lib.get(topo)
  if topo.is_2d:
    raise ValueError(f"topology {topo.name} is 2D: view normalisation needs 3D positions")
  positions = np.asarray(positions, np.float32)
  if valid is None:
    valid = np.any(positions != 0, axis=-1).astype(np.float32)
  ls, rs, lh, rh = joints if joints is not None else _view_joints(topo)
  need = list(ls) + list(rs) + list(lh) + list(rh)
  ok = np.all(valid[:, 0, need] > 0, axis=-1)
  if not ok.any():
    raise ValueError("no frame where person 0 has valid shoulders and hips")
  p = positions[np.argmax(ok), 0].astype(np.float64)
  hips = (p[lh].mean(0) + p[rh].mean(0)) / 2
  shoulders = (p[ls].mean(0) + p[rs].mean(0)) / 2
  y = shoulders - hips
  across = (p[rs].mean(0) - p[ls].mean(0)) + (p[rh].mean(0) - p[lh].mean(0))
  if np.linalg.norm(y) < 1e-9:
    raise ValueError("shoulders and hips coincide: cannot define the up direction")
  y /= np.linalg.norm(y)
  x = across - across.dot(y) * y
  if np.linalg.norm(x) < 1e-9:
    raise ValueError("left and right sides coincide: cannot define the x direction")
  x /= np.linalg.norm(x)
  z = np.cross(x, y)
  rot = np.stack([x, y, z])  # rows: new axes in old coordinates
  out = (positions.astype(np.float64) - hips) @ rot.T
  return np.where(valid[..., None] > 0, out, 0).astype(np.float32)
