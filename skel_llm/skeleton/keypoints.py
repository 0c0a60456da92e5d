"""Single-frame keypoint sets: COCO-17 person keypoints JSON and Human3.6M-17 (mmpose files).

These files hold independent images, not sequences. `parse_coco` / `parse_h36m`
still return one record whose frames are the images (frame t = image t,
`metadata['independent_frames'] = True`) so that `load()` works on them;
`parse_coco_images` gives one single-frame record per image.
"""

from __future__ import annotations

import os
import re

import numpy as np

from skel_llm.skeleton import bounds, files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

NUM_JOINTS = 17
COCO_PERSON_CATEGORY = 1


def _image_size(img: dict, where: str, path: str) -> tuple[float, float] | None:
  """(width, height) of a COCO image entry, None when it states neither."""
  if "width" not in img and "height" not in img:
    return None
  size = tuple(float(files.field(img, k, where, path, (int, float))) for k in ("width", "height"))
  if not all(1 <= v <= 1e6 for v in size):
    raise SkeletonFormatError(path, where, f"expected width and height in 1..1e6 pixels, got "
                              f"{size}")
  return size


def _coco_people(path: str, doc=None, image_margin: float = bounds.IMAGE_MARGIN
                 ) -> tuple[list[dict], dict[int, list[tuple[int, np.ndarray]]]]:
  doc = files.read_json(path) if doc is None else doc
  if not isinstance(doc, dict):
    raise SkeletonFormatError(path, "$", "expected a COCO object with 'images' and 'annotations'")
  images = files.field(doc, "images", "$", path, list)
  anns = files.field(doc, "annotations", "$", path, list)
  by_image: dict[int, list[tuple[int, np.ndarray]]] = {}
  limits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
  for k, img in enumerate(images):
    iid = files.field(img, "id", f"$.images[{k}]", path, int)
    if iid in by_image:
      raise SkeletonFormatError(path, f"$.images[{k}].id", f"image id {iid} appears twice")
    if "file_name" in img:
      files.field(img, "file_name", f"$.images[{k}]", path, str)
    by_image[iid] = []
    size = _image_size(img, f"$.images[{k}]", path)
    limits[iid] = (bounds.image_limits(size, image_margin) if size is not None
                   else (-bounds.PIXEL_MAX_ABS, bounds.PIXEL_MAX_ABS))
  checked = []  # (JSON path, keypoint xy [17, 2], (lo, hi)) of every person annotation
  for k, ann in enumerate(anns):
    where = f"$.annotations[{k}]"
    if files.field(ann, "category_id", where, path, int) != COCO_PERSON_CATEGORY:
      continue
    iid = files.field(ann, "image_id", where, path, int)
    if iid not in by_image:
      raise SkeletonFormatError(path, f"{where}.image_id", f"image id {iid} is not in $.images")
    kp = files.numbers(files.field(ann, "keypoints", where, path, list), (3 * NUM_JOINTS,),
                       f"{where}.keypoints", path).reshape(NUM_JOINTS, 3)
    if not np.isin(kp[:, 2], (0, 1, 2)).all():
      j = int(np.flatnonzero(~np.isin(kp[:, 2], (0, 1, 2)))[0])
      raise SkeletonFormatError(path, f"{where}.keypoints[{3 * j + 2}]", f"expected a visibility "
                                f"flag 0, 1 or 2, got {kp[j, 2]:.6g}")
    aid = files.field(ann, "id", where, path, int) if "id" in ann else k
    by_image[iid].append((aid, kp))
    checked.append((where, kp[:, :2], limits[iid]))
  if checked:  # pixel bounds, checked once over every annotation
    lo = np.stack([np.broadcast_to(c[2][0], (2,)) for c in checked])[:, None]
    hi = np.stack([np.broadcast_to(c[2][1], (2,)) for c in checked])[:, None]
    bounds.check_range(np.stack([c[1] for c in checked]), lo, hi, path=path,
                       what="pixel coordinate",
                       where=lambda i: (f"{checked[i[0]][0]}.keypoints[{3 * i[1] + i[2]}]",
                                        "xy"[i[2]]),
                       hint=" (more than image_margin image sizes outside the image)")
  return images, by_image


def _coco_record(path: str, images: list[dict], people: list[list[tuple[int, np.ndarray]]]
                 ) -> SkeletonRecord:
  t = len(people)
  p = max(1, max((len(x) for x in people), default=0))
  positions = np.zeros((t, p, NUM_JOINTS, 3), np.float32)
  vis = np.zeros((t, p, NUM_JOINTS), np.int8)
  ann_ids = np.full((t, p), -1, np.int64)
  for f, persons in enumerate(people):
    for m, (aid, kp) in enumerate(persons):
      positions[f, m, :, :2] = kp[:, :2]
      vis[f, m] = kp[:, 2]
      ann_ids[f, m] = aid
  meta = {"file_format": "coco", "independent_frames": True,
          "image_ids": [int(img["id"]) for img in images],
          "file_names": [img.get("file_name", "") for img in images],
          "persons_per_image": np.array([len(x) for x in people], np.int32),
          "visibility": vis, "annotation_ids": ann_ids}
  return SkeletonRecord(positions=positions, valid=(vis > 0).astype(np.float32), format="coco17",
                        fps=0.0, is_2d=True, metadata=meta, source=path)


def parse_coco(path: str | os.PathLike, *, doc=None,
               image_margin: float = bounds.IMAGE_MARGIN) -> SkeletonRecord:
  """All images of a COCO keypoints file: positions float32[N_images, P, 17, 3] (z = 0, pixels).

  P is the most persons in one image; unused slots are absent (valid 0).
  valid = 1 where the keypoint is labelled (v > 0); v is kept in
  `metadata['visibility']`. Keypoints must lie within `image_margin` image
  sizes of the image's `width` x `height` (|x|, |y| <= 1e5 without them).
  """
  path = os.fspath(path)
  images, by_image = _coco_people(path, doc, image_margin)
  if not images:
    raise SkeletonFormatError(path, "$.images", "expected at least one image")
  return _coco_record(path, images, [by_image[int(img["id"])] for img in images])


def parse_coco_images(path: str | os.PathLike, *, doc=None,
                      image_margin: float = bounds.IMAGE_MARGIN) -> list[SkeletonRecord]:
  """One single-frame record per image of a COCO keypoints file (bounds as `parse_coco`)."""
  path = os.fspath(path)
  images, by_image = _coco_people(path, doc, image_margin)
  return [_coco_record(path, [img], [by_image[int(img["id"])]]) for img in images]


_H36M_NAME = re.compile(r"S(\d+)_([A-Za-z]+(?:_\d)?)\.(\d+)_(\d+)")


def parse_h36m(path: str | os.PathLike, *, max_abs: float = bounds.METRIC_MAX_ABS,  # noqa: C901
               image_size: tuple[float, float] = bounds.H36M_IMAGE_SIZE,
               image_margin: float = bounds.IMAGE_MARGIN) -> SkeletonRecord:
  """Human3.6M-17 frames.

  `.npz` (mmpose `test_h36m_body3d` layout): positions from `S` [N, 17, 4]
  (camera metres, y down) with its 4th column as confidence; `part` (2D
  pixels + visibility), `imgname`, `center`, `scale` go to metadata.
  `.npy` [N, 17, 3]: 2D detections (x, y, score) in pixels; [N, 17, 2]: 2D.

  Bounds: |S xyz| <= `max_abs` metres; pixels (`part`, `center`, `.npy`)
  within `image_margin` image sizes of a `image_size` = (W, H) frame;
  confidences, visibilities and scores in [0, 1].
  """
  path = os.fspath(path)
  lo_px, hi_px = bounds.image_limits(image_size, image_margin)

  def at(key: str):
    return lambda idx: (key, f"index {list(idx)}")

  if path.lower().endswith(".npz"):
    try:
      # np.load(path) leaves its file open when the zip directory is damaged: open it here.
      with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    except files.NPY_ERRORS as e:
      raise SkeletonFormatError(path, None, f"expected an .npz of plain arrays "
                                f"({type(e).__name__}: {e})") from None
    if "S" not in data:
      raise SkeletonFormatError(path, None, f"expected key 'S' [N, 17, 4] (3D joints + "
                                f"confidence), found keys {sorted(data)}")
    s = files.check_array(data["S"], (-1, NUM_JOINTS, 4), path, "S")
    n = s.shape[0]
    if n < 1:
      raise SkeletonFormatError(path, "S", "expected at least one frame")
    bounds.check_abs(s[..., :3], max_abs, path=path, where=at("S"), what="coordinate (m)")
    bounds.check_range(s[..., 3], 0.0, 1.0, path=path, where=at("S[..., 3]"), what="confidence")
    meta = {"file_format": "h36m", "independent_frames": True}
    for key, shape in (("part", (n, NUM_JOINTS, 3)), ("center", (n, 2)), ("scale", (n,))):
      if key in data:
        meta[key] = files.check_array(data[key], shape, path, key)
    if "part" in meta:
      bounds.check_range(meta["part"][..., :2], lo_px, hi_px, path=path, where=at("part"),
                         what="pixel coordinate")
      bounds.check_range(meta["part"][..., 2], 0.0, 1.0, path=path, where=at("part[..., 2]"),
                         what="visibility")
    if "center" in meta:
      bounds.check_range(meta["center"], lo_px, hi_px, path=path, where=at("center"),
                         what="pixel coordinate")
    if "scale" in meta:
      bounds.check_range(meta["scale"], 1e-6, float(max(image_size)), path=path,
                         where=at("scale"), what="box scale")
    if "imgname" in data:
      if data["imgname"].dtype.kind not in "US":
        raise SkeletonFormatError(path, "imgname", f"expected image names (strings), got dtype "
                                  f"{data['imgname'].dtype}")
      names = [str(x) for x in data["imgname"].reshape(-1)]
      if data["imgname"].ndim != 1 or len(names) != n:
        raise SkeletonFormatError(path, "imgname", f"expected {n} names, got shape "
                                  f"{data['imgname'].shape}")
      meta["imgname"] = names
      parsed = [_H36M_NAME.search(x) for x in names]
      meta["subject"] = [int(m.group(1)) if m else None for m in parsed]
      meta["action_name"] = [m.group(2) if m else None for m in parsed]
      meta["camera_id"] = [m.group(3) if m else None for m in parsed]
    positions = bounds.to_float32(s[:, None, :, :3], path=path, where=at("S"), what="coordinate")
    valid = s[:, None, :, 3].astype(np.float32)
    return SkeletonRecord(positions=positions, valid=valid, format="h36m17", fps=50.0,
                          metadata=meta, source=path)
  arr = files.load_npy(path)
  if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.shape[1:] not in (
      (NUM_JOINTS, 2), (NUM_JOINTS, 3)):
    got = arr.shape if isinstance(arr, np.ndarray) else type(arr).__name__
    raise SkeletonFormatError(path, "array", f"expected shape [N, 17, 2|3], got {got}")
  files.check_array(arr, (-1, NUM_JOINTS, arr.shape[2]), path, "array")
  n = arr.shape[0]
  if n < 1:
    raise SkeletonFormatError(path, "array", "expected at least one frame")
  bounds.check_range(arr[..., :2], lo_px, hi_px, path=path, where=at("array"),
                     what="pixel coordinate",
                     hint=" (more than image_margin image sizes outside the image)")
  if arr.shape[2] == 3:
    bounds.check_range(arr[..., 2], 0.0, 1.0, path=path, where=at("array[..., 2]"), what="score")
  positions = np.zeros((n, 1, NUM_JOINTS, 3), np.float32)
  positions[:, 0, :, :2] = arr[..., :2]
  valid = (arr[:, None, :, 2] if arr.shape[2] == 3
           else np.ones((n, 1, NUM_JOINTS))).astype(np.float32)
  meta = {"file_format": "h36m_2d", "independent_frames": True}
  return SkeletonRecord(positions=positions, valid=valid, format="h36m17", fps=50.0, is_2d=True,
                        metadata=meta, source=path)
