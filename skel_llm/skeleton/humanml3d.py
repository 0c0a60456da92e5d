"""HumanML3D `new_joints/<id>.npy` (SMPL-22 positions, y up, metres, 20 fps) + captions.

Captions live in `texts/<id>.txt` next to `new_joints/`: one caption per line,
`caption#tokens#start#end` (start/end in seconds, 0 = whole clip; NaN marks
"whole clip" in some releases too).
"""

from __future__ import annotations

import math
import os

import numpy as np

from skel_llm.skeleton import bounds, files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

NUM_JOINTS = 22
FPS = 20.0


def read_captions(path: str | os.PathLike) -> list[dict]:
  """Captions of a HumanML3D `texts/<id>.txt`: dicts caption, tokens, start, end (seconds).

  start / end must lie in [0, `bounds.CAPTION_MAX_S`] (NaN reads as 0, "whole clip").
  """
  path = os.fspath(path)
  try:
    with open(path, "rb") as f:
      raw = f.read()
    text = raw.decode("utf-8")
  except OSError as e:
    raise SkeletonFormatError(path, None, f"cannot read file ({e.strerror})") from None
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise SkeletonFormatError(path, line, "expected UTF-8 text") from None
  out = []
  for k, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    parts = line.split("#")
    if len(parts) != 4:
      raise SkeletonFormatError(path, k, f"expected 'caption#tokens#start#end', got {len(parts)} "
                                "'#'-separated fields")
    try:
      start, end = float(parts[2]), float(parts[3])
    except ValueError:
      raise SkeletonFormatError(path, k, f"expected numeric start/end, got {parts[2]!r}, "
                                f"{parts[3]!r}") from None
    start = 0.0 if math.isnan(start) else start
    end = 0.0 if math.isnan(end) else end
    if not (0 <= start <= bounds.CAPTION_MAX_S and 0 <= end <= bounds.CAPTION_MAX_S) or (
        end and end < start):
      raise SkeletonFormatError(path, k, f"expected 0 <= start <= end <= "
                                f"{bounds.CAPTION_MAX_S:g} seconds, got {start:g}, {end:g}")
    out.append({"caption": parts[0].strip(), "tokens": parts[1].split(), "start": start,
                "end": end})
  if not out:
    raise SkeletonFormatError(path, 1, "empty caption file: expected at least one caption line")
  return out



def _read_frames(path: str, shape: tuple[int, ...]) -> np.ndarray:
  """A plain (non-pickle) .npy array of `shape` (-1 = any) with at least one frame."""
  arr = files.load_npy(path)
  files.check_array(arr, shape, path, "array")
  if arr.shape[0] < 1:
    raise SkeletonFormatError(path, "array", "expected at least one frame")
  return arr


def _at(idx: tuple[int, ...]) -> tuple[str, str]:
  return "array", f"index {list(idx)}"


def parse_humanml3d(path: str | os.PathLike, *, texts_dir: str | os.PathLike | None = None,
                    max_abs: float = bounds.METRIC_MAX_ABS) -> SkeletonRecord:
  """positions float32[T, 1, 22, 3]; captions from `texts_dir` (default: ../texts if present).

  When no texts folder exists, `metadata['captions']` is None (not an empty list).
  Every coordinate must lie within +-`max_abs` metres.
  """
  path = os.fspath(path)
  arr = _read_frames(path, (-1, NUM_JOINTS, 3))
  arr = bounds.checked_float32(arr, max_abs, path=path, where=_at, what="coordinate (m)")
  return _with_captions(path, arr, texts_dir)


def _with_captions(path: str, positions: np.ndarray, texts_dir) -> SkeletonRecord:
  """A record of float[T, 22, 3] positions with the clip's captions (see parse_humanml3d)."""
  stem = files.basename_stem(path)
  if texts_dir is None:
    guess = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), "texts")
    texts_dir = guess if os.path.isdir(guess) else None
  captions = None
  if texts_dir is not None:
    captions = read_captions(os.path.join(os.fspath(texts_dir), f"{stem}.txt"))
  meta = {"file_format": "humanml3d", "name": stem, "captions": captions,
          "texts_dir": None if texts_dir is None else os.fspath(texts_dir)}
  t = positions.shape[0]
  return SkeletonRecord(positions=positions[:, None].astype(np.float32),
                        valid=np.ones((t, 1, NUM_JOINTS), np.float32), format="smpl22", fps=FPS,
                        metadata=meta, source=path)


# ---------------------------------------------------------------------------------------------
# new_joint_vecs: the 263-d HumanML3D motion features, turned back into joint positions.
#
# Feature layout for J = 22 joints (HumanML3D's motion_representation): [0] root angular
# velocity about y, [1:3] root x/z velocity in the root's heading frame, [3] root height,
# [4:67] the 21 non-root joints relative to the root in its heading frame (RIC), [67:193]
# 6D joint rotations, [193:259] joint velocities, [259:263] foot contacts. Positions come
# from the root trajectory (integrated heading and velocity) plus the RIC joints, as
# HumanML3D's own `recover_from_ric` does; its `new_joints/` files are that function's output.

NUM_FEATURES = 4 + (NUM_JOINTS - 1) * 9 + NUM_JOINTS * 3 + 4  # 263


def _rotate_y(angle: np.ndarray, v: np.ndarray) -> np.ndarray:
  """Rotates v float[..., 3] by the inverse of the heading quaternion (cos a, 0, sin a, 0).

  That quaternion is a rotation by 2a about +y; its inverse maps
  (x, z) -> (x cos 2a + z sin 2a, -x sin 2a + z cos 2a).
  """
  c, s = np.cos(2 * angle), np.sin(2 * angle)
  x, y, z = v[..., 0], v[..., 1], v[..., 2]
  return np.stack([c * x - s * z, y, s * x + c * z], axis=-1)


def recover_from_ric(features: np.ndarray, num_joints: int = NUM_JOINTS) -> np.ndarray:
  """float64[T, J, 3] joint positions from HumanML3D features float[T, 263]."""
  f = np.asarray(features, np.float64)
  t = f.shape[0]
  angle = np.zeros(t)
  angle[1:] = f[:-1, 0]
  angle = np.cumsum(angle)
  step = np.zeros((t, 3))
  step[1:, 0] = f[:-1, 1]
  step[1:, 2] = f[:-1, 2]
  root = np.cumsum(_rotate_y(angle, step), axis=0)
  root[:, 1] = f[:, 3]
  ric = f[:, 4:4 + (num_joints - 1) * 3].reshape(t, num_joints - 1, 3)
  joints = _rotate_y(angle[:, None], ric)
  joints[..., 0] += root[:, None, 0]
  joints[..., 2] += root[:, None, 2]
  return np.concatenate([root[:, None], joints], axis=1)


def parse_humanml3d_vecs(path: str | os.PathLike, *, texts_dir: str | os.PathLike | None = None,
                         max_abs: float = bounds.FEATURE_MAX_ABS) -> SkeletonRecord:
  """A `new_joint_vecs/<id>.npy` float[T, 263] file as positions float32[T, 1, 22, 3].

  Captions as in `parse_humanml3d`; the features themselves are kept in
  `metadata['features']` (float32). Every feature and every recovered
  coordinate must lie within +-`max_abs` (metres, m/frame, rad/frame).
  """
  path = os.fspath(path)
  arr = _read_frames(path, (-1, NUM_FEATURES))
  arr = bounds.checked_float32(arr, max_abs, path=path, where=_at, what="feature")
  positions = recover_from_ric(arr)
  positions = bounds.checked_float32(
      positions, max_abs, path=path, what="recovered coordinate (m)",
      where=lambda idx: ("array", f"frame {idx[0]} joint {idx[1]} {bounds.axis_name(idx[2])}"))
  rec = _with_captions(path, positions, texts_dir)
  rec.metadata.update({"file_format": "humanml3d_vecs", "features": arr})
  return rec
