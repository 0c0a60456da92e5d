"""Kinetics-skeleton JSON (ST-GCN release): OpenPose-18 2D joints with confidences.

Layout: {"data": [{"frame_index": 1.., "skeleton": [{"pose": [x0, y0, ..., x17, y17],
"score": [s0..s17]}, ...]}, ...], "label": str, "label_index": int}; x, y are
normalised to [0, 1] by the 340 x 256 frame, y pointing down.

The file carries no person identities, so, as ST-GCN's Kinetics feeder does,
people are ranked per frame by their summed joint score and the `max_people`
best are kept. Frames with nobody stay as invalid frames; the raw number of
people in every frame is kept in `metadata['people_per_frame']`.
"""

from __future__ import annotations

import os

import numpy as np

from skel_llm.skeleton import bounds, files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

NUM_JOINTS = 18
FPS = 30.0


def parse_kinetics(path: str | os.PathLike, *, max_people: int = 2, doc=None,
                   image_margin: float = bounds.IMAGE_MARGIN) -> SkeletonRecord:
  """positions float32[T, P, 18, 3] (z = 0), valid = OpenPose score, P = min(max_people, most seen).

  `doc` is the file's already parsed JSON, when the caller has it (`load()` does).
  Normalised x, y must lie within [-image_margin, 1 + image_margin] and every
  score within [0, 1].
  """
  path = os.fspath(path)
  doc = files.read_json(path) if doc is None else doc
  if not isinstance(doc, dict):
    raise SkeletonFormatError(path, "$", "expected a JSON object with 'data', 'label', "
                              "'label_index'")
  data = files.field(doc, "data", "$", path, list)
  if not data:
    raise SkeletonFormatError(path, "$.data", "expected at least one frame")
  t = len(data)
  seen = np.zeros(t, bool)
  people: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(t)]
  places, poses, scores = [], [], []  # JSON path, pose, score of every person in file order
  for k, frame in enumerate(data):
    where = f"$.data[{k}]"
    idx = files.field(frame, "frame_index", where, path, int)
    if not 1 <= idx <= t:
      raise SkeletonFormatError(path, f"{where}.frame_index", f"expected a frame index in 1..{t}, "
                                f"got {idx}")
    if seen[idx - 1]:
      raise SkeletonFormatError(path, f"{where}.frame_index", f"frame index {idx} appears twice")
    seen[idx - 1] = True
    for m, person in enumerate(files.field(frame, "skeleton", where, path, list)):
      pw = f"{where}.skeleton[{m}]"
      pose = files.numbers(files.field(person, "pose", pw, path, list), (2 * NUM_JOINTS,),
                           f"{pw}.pose", path)
      score = files.numbers(files.field(person, "score", pw, path, list), (NUM_JOINTS,),
                            f"{pw}.score", path)
      people[idx - 1].append((pose.reshape(NUM_JOINTS, 2), score))
      places.append(pw)
      poses.append(pose)
      scores.append(score)
  if places:  # bounds checked once over every person of the file
    bounds.check_range(np.stack(poses), -image_margin, 1.0 + image_margin, path=path,
                       what="normalised coordinate",
                       where=lambda i: (f"{places[i[0]]}.pose[{i[1]}]", "xy"[i[1] % 2]),
                       hint=" (more than image_margin frames outside the image)")
    bounds.check_range(np.stack(scores), 0.0, 1.0, path=path, what="confidence",
                       where=lambda i: (f"{places[i[0]]}.score[{i[1]}]", "score"))
  counts = np.array([len(p) for p in people], np.int32)
  p = max(1, min(max_people, int(counts.max())))
  positions = np.zeros((t, p, NUM_JOINTS, 3), np.float32)
  valid = np.zeros((t, p, NUM_JOINTS), np.float32)
  for f, persons in enumerate(people):
    if not persons:
      continue
    order = np.argsort([-s.sum() for _, s in persons], kind="stable")[:p]
    for slot, m in enumerate(order):
      pose, score = persons[m]
      positions[f, slot, :, :2] = pose
      valid[f, slot] = score
  meta = {"file_format": "kinetics_skeleton", "name": files.basename_stem(path),
          "people_per_frame": counts, "empty_frames": int((counts == 0).sum()),
          "max_people_in_a_frame": int(counts.max()), "image_size": (340, 256)}
  if "label" in doc:
    meta["label_name"] = files.field(doc, "label", "$", path, str)
  if "label_index" in doc:
    meta["label"] = files.field(doc, "label_index", "$", path, int)
  return SkeletonRecord(positions=positions, valid=valid, format="openpose18", fps=FPS, is_2d=True,
                        metadata=meta, source=path)
