"""NW-UCLA (Northwestern-UCLA Multiview Action3D) skeleton JSON, Kinect v1 20 joints.

Layout of the per-sample JSON files used by skeleton action-recognition code
(e.g. the `all_sqe/` release of CTR-GCN's preprocessing): {"file_name":
"a01_s01_e00_v01", "skeletons": [T][20][3] (x, y, z in Kinect camera metres),
"label": 1-based action index}. The name encodes action / subject / episode /
view (`aAA_sSS_eEE_vVV`).
"""

from __future__ import annotations

import os
import re

import numpy as np

from skel_llm.skeleton import bounds, files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

NUM_JOINTS = 20
FPS = 30.0
_NAME_RE = re.compile(r"a(\d+)_s(\d+)_e(\d+)_v(\d+)")


def parse_nw_ucla(path: str | os.PathLike, *, doc=None,
                  max_abs: float = bounds.METRIC_MAX_ABS) -> SkeletonRecord:
  """positions float32[T, 1, 20, 3]; metadata action/subject/episode/view and label.

  Every coordinate must lie within +-`max_abs` metres.

  `doc` is the file's already parsed JSON, when the caller has it (`load()` does).
  """
  path = os.fspath(path)
  doc = files.read_json(path) if doc is None else doc
  if not isinstance(doc, dict):
    raise SkeletonFormatError(path, "$", "expected a JSON object with 'skeletons'")
  frames = files.field(doc, "skeletons", "$", path, list)
  if not frames:
    raise SkeletonFormatError(path, "$.skeletons", "expected at least one frame")
  for k, frame in enumerate(frames):
    if not isinstance(frame, list) or len(frame) != NUM_JOINTS:
      got = len(frame) if isinstance(frame, list) else type(frame).__name__
      raise SkeletonFormatError(path, f"$.skeletons[{k}]", f"expected {NUM_JOINTS} joints, got "
                                f"{got}")
    for j, joint in enumerate(frame):
      if not isinstance(joint, list) or len(joint) != 3:
        raise SkeletonFormatError(path, f"$.skeletons[{k}][{j}]", "expected [x, y, z]")
  xyz = files.numbers(frames, (-1, NUM_JOINTS, 3), "$.skeletons", path)
  xyz = bounds.checked_float32(
      xyz, max_abs, path=path, what="coordinate (m)",
      where=lambda idx: (f"$.skeletons[{idx[0]}][{idx[1]}][{idx[2]}]", bounds.axis_name(idx[2])))
  meta = {"file_format": "nw_ucla"}
  name = doc.get("file_name", files.basename_stem(path))
  if not isinstance(name, str):
    raise SkeletonFormatError(path, "$['file_name']", "expected a string")
  meta["name"] = name
  m = _NAME_RE.search(name)
  if m:
    meta.update(dict(zip(("action", "subject", "episode", "view"), (int(g) for g in m.groups()))))
  if "label" in doc:
    meta["label"] = files.field(doc, "label", "$", path, int)
  t = xyz.shape[0]
  return SkeletonRecord(positions=xyz[:, None],
                        valid=np.ones((t, 1, NUM_JOINTS), np.float32), format="kinect20", fps=FPS,
                        metadata=meta, source=path)
