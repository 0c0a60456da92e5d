"""HumanML3D `new_joints/<id>.npy` (SMPL-22 positions, y up, metres, 20 fps) + captions.

Captions live in `texts/<id>.txt` next to `new_joints/`: one caption per line,
`caption#tokens#start#end` (start/end in seconds, 0 = whole clip; NaN marks
"whole clip" in some releases too).
"""

from __future__ import annotations

import math
import os

import numpy as np

from skel_llm.skeleton import files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

NUM_JOINTS = 22
FPS = 20.0


def read_captions(path: str | os.PathLike) -> list[dict]:
  """Captions of a HumanML3D `texts/<id>.txt`: dicts caption, tokens, start, end (seconds)."""
  path = os.fspath(path)
  try:
    with open(path, "rb") as f:
      raw = f.read()
    text = raw.decode("utf-8")
  except OSError as e:
    raise SkeletonFormatError(path, None, f"cannot read file ({e.strerror})") from None
  except UnicodeDecodeError:
    raise SkeletonFormatError(path, None, "expected UTF-8 text") from None
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
    if start < 0 or end < 0 or (end and end < start):
      raise SkeletonFormatError(path, k, f"expected 0 <= start <= end seconds, got {start}, {end}")
    out.append({"caption": parts[0].strip(), "tokens": parts[1].split(), "start": start,
                "end": end})
  if not out:
    raise SkeletonFormatError(path, 1, "empty caption file: expected at least one caption line")
  return out


def parse_humanml3d(path: str | os.PathLike, *, texts_dir: str | os.PathLike | None = None
                    ) -> SkeletonRecord:
  """positions float32[T, 1, 22, 3]; captions from `texts_dir` (default: ../texts if present).

  When no texts folder exists, `metadata['captions']` is None (not an empty list).
  """
  path = os.fspath(path)
  try:
    arr = np.load(path, allow_pickle=False)
  except ValueError as e:
    raise SkeletonFormatError(path, None, f"expected a plain .npy array ({e})") from None
  except (OSError, EOFError) as e:
    raise SkeletonFormatError(path, None, f"cannot read .npy ({e})") from None
  files.check_array(arr, (-1, NUM_JOINTS, 3), path, "array")
  if arr.shape[0] < 1:
    raise SkeletonFormatError(path, "array", "expected at least one frame")
  stem = files.basename_stem(path)
  if texts_dir is None:
    guess = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), "texts")
    texts_dir = guess if os.path.isdir(guess) else None
  captions = None
  if texts_dir is not None:
    captions = read_captions(os.path.join(os.fspath(texts_dir), f"{stem}.txt"))
  meta = {"file_format": "humanml3d", "name": stem, "captions": captions,
          "texts_dir": None if texts_dir is None else os.fspath(texts_dir)}
  t = arr.shape[0]
  return SkeletonRecord(positions=arr[:, None].astype(np.float32),
                        valid=np.ones((t, 1, NUM_JOINTS), np.float32), format="smpl22", fps=FPS,
                        metadata=meta, source=path)
