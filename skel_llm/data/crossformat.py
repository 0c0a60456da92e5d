"""Cross-format evaluation protocols: a run trained on one skeleton format, evaluated on another.

The paper's universal-understanding claim (docs/method.md §5): one model reads other
sensors' skeletons with no target training. Each protocol names the target data, the
topology its renderer is transferred to (`skel_llm.eval.predict.PredictFns.render`) and the
class names the model is asked, given by a mapping from every target class to the name
offered as a candidate. The paper does not publish its label mapping; ours only rewrites
names that are jargon or differ in wording from the training vocabulary and says so below.

| protocol | trained on | target | topology |
|---|---|---|---|
| `ntu60_to_nwucla` | NTU-60 | NW-UCLA `nw_ucla/xview` test (10 classes) | kinect20 |
| `humanml3d_to_nwucla` | HumanML3D | NW-UCLA `nw_ucla/xview` test | kinect20 |
| `humanml3d_to_ntu60_2d` | HumanML3D | NTU-60 `ntu_rgbd/ntu60_xsub` test, as COCO-17 in 2D | coco17 |
| `bvh_folder` | any | a folder of BVH files, one subfolder per class | the files' |

An evaluator selects one with `data.crossformat`; `data.tfds_name`, `data.eval_split` and
`data.data_dir` still override where the target data is read (the BVH folder is
`data.data_dir`). NTU-60 in 2D follows the paper ("the 2D projection of NTU skeletons"): the
NTU joints are projected by a 60 degree pinhole onto a 640 x 480 image (the convention of
`skel_llm.synthetic.formats` for COCO-17) and renamed to COCO-17 by
`skeleton.correspondence` (nose <- head); NTU has no eyes or ears, so those four keypoints
take the head's projection. This is our reading of the paper's one sentence.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np

from skel_llm.data import classnames, sources


@dataclasses.dataclass(frozen=True)
class CrossFormat:
  """One named cross-format protocol.

  Attributes:
    name: the protocol's name (`data.crossformat`).
    trained_on: the training data it assumes (a TFDS name prefix, or '' for any).
    target: 'tfds', 'tfds_2d' (an NTU build projected to COCO-17) or 'bvh_folder'.
    topology: the target's topology ('' for BVH: the files' own skeleton).
    tfds_name, eval_split: the target build and split (overridable by the evaluator).
    classes: the target's class names, index = label.
    mapping: target class name -> the name asked; must cover every class.
  """

  name: str
  trained_on: str
  target: str
  topology: str
  tfds_name: str = ""
  eval_split: str = "test"
  classes: tuple[str, ...] = ()
  mapping: tuple[tuple[str, str], ...] = ()

  def asked_names(self, classes: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """The candidate names, in label order; raises naming every class the mapping misses."""
    classes = tuple(classes if classes is not None else self.classes)
    table = dict(self.mapping)
    missing = [c for c in classes if c not in table]
    if missing:
      raise ValueError(f"cross-format protocol {self.name}: the class mapping misses "
                       f"{missing}; it maps {sorted(table)}")
    return [table[c] for c in classes]


# NW-UCLA -> names in the NTU vocabulary where NTU has the action (A6 pickup, A5 drop,
# A8 sitting down, A9 standing up, A14 wear jacket, A15 take off jacket, A7 throw); the
# others keep NW-UCLA's wording. Ours: the paper does not list its mapping.
_UCLA_NAMES = (
    ("pick up with one hand", "pick up with one hand"),
    ("pick up with two hands", "pick up with two hands"),
    ("drop trash", "drop trash"),
    ("walk around", "walk around"),
    ("sit down", "sitting down"),
    ("stand up", "standing up (from sitting position)"),
    ("donning", "wear jacket"),
    ("doffing", "take off jacket"),
    ("throw", "throw"),
    ("carry", "carry an object"),
)

PROTOCOLS: dict[str, CrossFormat] = {p.name: p for p in (
    CrossFormat("ntu60_to_nwucla", "ntu_rgbd/ntu60", "tfds", "kinect20",
                tfds_name="nw_ucla/xview", classes=classnames.NW_UCLA_CLASSES,
                mapping=_UCLA_NAMES),
    CrossFormat("humanml3d_to_nwucla", "humanml3d", "tfds", "kinect20",
                tfds_name="nw_ucla/xview", classes=classnames.NW_UCLA_CLASSES,
                mapping=_UCLA_NAMES),
    CrossFormat("humanml3d_to_ntu60_2d", "humanml3d", "tfds_2d", "coco17",
                tfds_name="ntu_rgbd/ntu60_xsub", classes=classnames.NTU60_CLASSES,
                mapping=tuple((c, c) for c in classnames.NTU60_CLASSES)),
    CrossFormat("bvh_folder", "", "bvh_folder", ""),
)}


def names() -> list[str]:
  return sorted(PROTOCOLS)


def get(name: str) -> CrossFormat:
  try:
    return PROTOCOLS[name]
  except KeyError:
    raise ValueError(f"cross-format protocol {name!r} is unknown; known: {names()}") from None


# --- NTU-25 in 3D -> COCO-17 in 2D -----------------------------------------------------------

IMAGE_WH = (640, 480)


def ntu_to_coco2d(positions: np.ndarray, image_wh: tuple[int, int] = IMAGE_WH,
                  fov_deg: float = 60.0) -> np.ndarray:
  """float32[T, P, 17, 3] COCO-17 pixels (x, y down, 0) from NTU-25 Kinect metres [T, P, 25, 3].

  A pinhole with `fov_deg` vertical field of view on a `image_wh` image; Kinect's x grows to
  the sensor's left, so u = -f x / z + W / 2, v = -f y / z + H / 2. Eyes and ears (absent in
  NTU) take the head joint; absent persons stay all zero.
  """
  from skel_llm.skeleton import correspondence
  pos = np.asarray(positions, np.float32)
  index = correspondence.correspondence("ntu25", "coco17", approximate=True)
  head = correspondence.correspondence("ntu25", "coco17", approximate=True)[0]  # nose <- head
  index = np.where(index >= 0, index, head)
  picked = pos[:, :, index]
  w, h = image_wh
  f = h / (2.0 * np.tan(np.deg2rad(fov_deg) / 2.0))
  z = np.maximum(picked[..., 2], 1e-6)
  uv = np.stack([-f * picked[..., 0] / z + w / 2.0, -f * picked[..., 1] / z + h / 2.0,
                 np.zeros_like(z)], axis=-1)
  present = np.any(pos != 0, axis=(-1, -2))
  return np.where(present[..., None, None], uv, 0.0).astype(np.float32)


class Projected2D(sources.ClipSource):
  """An NTU-25 source seen as COCO-17 in 2D (`ntu_to_coco2d`), then placed by `placement`."""

  def __init__(self, base: sources.ClipSource, class_names: list[str], placement: str):
    from skel_llm.render import camera
    self._base = base
    self.name = f"{base.name}:coco17_2d"
    self.class_names = list(class_names)
    self.candidate_ids = list(base.candidate_ids)
    self.two_person_labels = base.two_person_labels
    self.topology = "coco17"
    self._place = lambda p: camera.place(p, placement, "coco17")

  def __len__(self) -> int:
    return len(self._base)

  def keys(self) -> list[str]:
    return self._base.keys()

  def __getitem__(self, index: int):
    clip = self._base[index]
    return dataclasses.replace(clip, positions=self._place(ntu_to_coco2d(clip.positions)))


class BvhFolder(sources.ClipSource):
  """Every `.bvh` under `folder/<class name>/`: label = the subfolder's class, sorted by name.

  All files must share one skeleton (joint names): it is registered as topology
  `bvh_<first 8 hex digits of the joint names' sha256>` so the renderer can be transferred
  to it. Positions are placed by `placement` ('auto': `normalise`, BVH units are the file's).
  """

  def __init__(self, folder: str, protocol: CrossFormat, placement: str, *,
               mapping: dict[str, str] | None = None):
    from skel_llm import skeleton
    from skel_llm.render import camera
    from skel_llm.skeleton import topology as topology_lib
    if not folder or not os.path.isdir(folder):
      raise FileNotFoundError(f"cross-format protocol {protocol.name}: data.data_dir "
                              f"{folder!r} is not a folder of <class>/<file>.bvh")
    classes = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    files = [(os.path.join(folder, c, f), i) for i, c in enumerate(classes)
             for f in sorted(os.listdir(os.path.join(folder, c))) if f.lower().endswith(".bvh")]
    if not files:
      raise FileNotFoundError(f"cross-format protocol {protocol.name}: no {folder}/<class>/"
                              f"*.bvh files")
    self._records = []
    topo = None
    for path, label in files:
      rec = skeleton.load(path, format="bvh")
      if topo is None:
        topo = rec.topology
      elif rec.topology.joint_names != topo.joint_names:
        raise ValueError(f"{path}: joints {list(rec.topology.joint_names)[:4]}... differ from "
                         f"{files[0][0]}'s; a BVH folder must hold one skeleton")
      self._records.append((path, label, rec))
    digest = hashlib.sha256("\n".join(topo.joint_names).encode()).hexdigest()[:8]
    self.topology = f"bvh_{digest}"
    if self.topology not in topology_lib.names():
      topology_lib.register(dataclasses.replace(topo, name=self.topology))
    table = dict(mapping) if mapping else {c: c for c in classes}
    self.class_names = dataclasses.replace(protocol, classes=tuple(classes),
                                           mapping=tuple(table.items())).asked_names()
    self.candidate_ids = list(range(len(classes)))
    self.name = f"bvh:{folder}"
    self._place = lambda p: camera.place(p, placement, self.topology)

  def __len__(self) -> int:
    return len(self._records)

  def keys(self) -> list[str]:
    return [f"{self.name}/{os.path.relpath(p, self.name[4:])}" for p, _, _ in self._records]

  def __getitem__(self, index: int):
    path, label, rec = self._records[index]
    return sources.Clip(positions=self._place(rec.positions), label=label,
                        key=f"{self.name}/{os.path.basename(path)}")


def resolve(d: Any, overridden: set[str]) -> None:
  """Fill an evaluator's data config (in place, unlocked) from its `crossformat` protocol:
  the target build, split and topology unless the evaluator set them itself."""
  proto = get(d.crossformat)
  if "tfds_name" not in overridden:
    d.tfds_name = proto.tfds_name
  if "eval_split" not in overridden:
    d.eval_split = proto.eval_split
  if "topology" not in overridden:
    d.topology = proto.topology or d.topology  # BVH: the files' skeleton, set by the source
  if "source" not in overridden:
    d.source = "bvh_folder" if proto.target == "bvh_folder" else "tfds"
  d.protocol = ""  # the target's classes are all candidates


def check_trained_on(proto: CrossFormat, run_data: Any) -> None:
  """A TFDS run evaluated under a protocol must train on the protocol's source data."""
  if proto.trained_on and run_data.source == "tfds" and not str(
      run_data.tfds_name).startswith(proto.trained_on):
    raise ValueError(f"cross-format protocol {proto.name} evaluates a model trained on "
                     f"{proto.trained_on}*, but config.data.tfds_name is "
                     f"{run_data.tfds_name!r}")


def make_source(d: Any) -> sources.ClipSource:
  """The evaluation source of a `resolve`d data config (see the module docstring)."""
  proto = get(d.crossformat)
  placement = d.get("placement", "auto") or "auto"
  if proto.target == "bvh_folder":
    return BvhFolder(d.get("data_dir", ""), proto, placement)
  import copy
  base_cfg = copy.deepcopy(d)
  if proto.target == "tfds_2d":
    with base_cfg.unlocked():
      base_cfg.topology, base_cfg.placement = "ntu25", "kinect"  # raw metres, then projected
  from skel_llm.data import tfds_source
  base = tfds_source.TfdsSource.from_config(base_cfg, "eval")
  asked = proto.asked_names(tuple(base.class_names))
  if proto.target == "tfds_2d":
    return Projected2D(base, asked, placement)
  base.class_names = asked
  return base
