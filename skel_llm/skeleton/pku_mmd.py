"""PKU-MMD skeleton text files (+ label files -> one clip per labelled segment).

Skeleton file: one line per frame, 150 numbers = 2 bodies x 25 Kinect v2 joints
x (x, y, z) in camera metres; a missing body is all zeros. Label file: one
action per line, `label,start,end,confidence` with a 1-based label (1..51).
Segments are taken as the frame slice `[start, end)` with 0-based frame
indices, so `0 <= start < end <= T` must hold.
"""

from __future__ import annotations

import os

import numpy as np

from skel_llm.skeleton import bounds, fastfloat, files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

NUM_CLASSES = 51
FPS = 30.0
VALUES_PER_LINE = 150


def read_labels(label_path: str | os.PathLike, num_frames: int | None = None,
                num_classes: int = NUM_CLASSES, skeleton_path: str | os.PathLike | None = None
                ) -> list[dict]:
  """Segments of a PKU-MMD label file: dicts label (0-based), action (1-based), start, end, confidence.

  With `num_frames` (the frames of `skeleton_path`), segments must end within them.
  """
  label_path = os.fspath(label_path)
  text = files.read_text(label_path)
  if not text.strip():
    raise SkeletonFormatError(label_path, 1, "empty label file: expected 'label,start,end,confidence'"
                              " lines")
  out = []
  for k, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 4:
      raise SkeletonFormatError(label_path, k, f"expected 4 comma-separated fields "
                                f"'label,start,end,confidence', got {len(parts)}")
    try:
      action, start, end = int(parts[0]), int(parts[1]), int(parts[2])
      conf = float(parts[3])
    except ValueError:
      raise SkeletonFormatError(label_path, k, f"expected integers label,start,end and a numeric "
                                f"confidence, got {line.strip()!r}") from None
    if not 0 <= conf <= bounds.LABEL_CONFIDENCE_MAX:
      raise SkeletonFormatError(label_path, k, f"expected a confidence in [0, "
                                f"{bounds.LABEL_CONFIDENCE_MAX:g}], got {parts[3]!r}")
    if not 1 <= action <= num_classes:
      raise SkeletonFormatError(label_path, k, f"expected a label in 1..{num_classes}, got {action}")
    if not 0 <= start < end:
      raise SkeletonFormatError(label_path, k, f"expected 0 <= start < end, got start={start} "
                                f"end={end}")
    if num_frames is not None and end > num_frames:
      of = "the skeleton file" if skeleton_path is None else os.fspath(skeleton_path)
      raise SkeletonFormatError(label_path, k, f"segment end {end} is past the {num_frames} "
                                f"frames of {of}")
    out.append({"action": action, "label": action - 1, "start": start, "end": end,
                "confidence": conf, "line": k})
  return out


def parse_pku_mmd(path: str | os.PathLike, label_path: str | os.PathLike | None = None,
                  text: str | None = None, *, max_abs: float = bounds.METRIC_MAX_ABS
                  ) -> SkeletonRecord:
  """The whole PKU-MMD sequence: positions float32[T, 2, 25, 3], valid per present body.

  With `label_path`, its segments are checked against T and stored in
  `metadata['segments']`. Every coordinate must lie within +-`max_abs` metres.
  """
  path = os.fspath(path)
  if text is None:
    text = files.read_text(path)
  lines = text.splitlines()
  while lines and not lines[-1].strip():
    lines.pop()
  if not lines:
    raise SkeletonFormatError(path, 1, f"empty file: expected lines of {VALUES_PER_LINE} numbers")
  values = fastfloat.parse_rows(lines, VALUES_PER_LINE, path=path, line_of_row=lambda r: r + 1)
  t = len(lines)

  def where(idx: tuple[int, ...]) -> tuple[int, str]:
    return idx[0] + 1, f"field {idx[1] + 1}"

  positions = bounds.checked_float32(values, max_abs, path=path, where=where,
                                     what="coordinate (m)").reshape(t, 2, 25, 3)
  present = np.any(positions != 0, axis=(2, 3))  # [T, 2]
  valid = np.broadcast_to(present[:, :, None], (t, 2, 25)).astype(np.float32)
  meta = {"file_format": "pku_mmd", "name": files.basename_stem(path),
          "bodies_present": present.sum(axis=0).astype(np.int64)}
  if label_path is not None:
    meta["segments"] = read_labels(label_path, t, skeleton_path=path)
    meta["label_file"] = os.fspath(label_path)
  return SkeletonRecord(positions=positions, valid=valid, format="ntu25", fps=FPS, metadata=meta,
                        source=path)


def parse_pku_mmd_segments(path: str | os.PathLike, label_path: str | os.PathLike, *,
                           max_abs: float = bounds.METRIC_MAX_ABS) -> list[SkeletonRecord]:
  """One record per labelled segment of a PKU-MMD sequence (frames `[start, end)`)."""
  whole = parse_pku_mmd(path, label_path, max_abs=max_abs)
  out = []
  for seg in whole.metadata["segments"]:
    s, e = seg["start"], seg["end"]
    meta = {k: v for k, v in whole.metadata.items() if k not in ("segments", "bodies_present")}
    meta.update(seg)
    out.append(SkeletonRecord(positions=whole.positions[s:e].copy(), valid=whole.valid[s:e].copy(),
                              format="ntu25", fps=FPS, metadata=meta, source=whole.source))
  return out
