"""Joint correspondences between registry topologies, for cross-format work.

Joints correspond when they name the same anatomical point. Most names are
shared across topologies (`left_elbow`, `right_knee`, ...); the table below
maps the others onto the NTU-25 vocabulary. Pairs that are only close (the
NTU head centre vs the COCO nose, SMPL's chest joint vs Kinect's spine
shoulder) are listed separately and used only with `approximate=True`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from skel_llm.skeleton import topology as topology_lib
from skel_llm.skeleton.record import SkeletonRecord

# (topology, joint name) -> the NTU-25 name of the same point.
_SAME_POINT = {
    "kinect20": {"hip_center": "spine_base", "spine": "spine_mid", "shoulder_center": "spine_shoulder"},
    "openpose18": {"neck": "spine_shoulder"},  # OpenPose's neck is the mid-shoulder point
    "smpl22": {"pelvis": "spine_base"},
    # mmpose's H36M "foot" joints are the ankles; "neck_base" is the neck, "thorax" the top of the spine.
    "h36m17": {"root": "spine_base", "spine": "spine_mid", "thorax": "spine_shoulder",
               "neck_base": "neck", "left_foot": "left_ankle", "right_foot": "right_ankle"},
}
# Close but not the same point: used only with approximate=True.
_CLOSE_POINT = {
    "ntu25": {"head": "nose"},
    "kinect20": {"head": "nose"},
    "smpl22": {"spine2": "spine_mid", "spine3": "spine_shoulder", "head": "nose"},
    "h36m17": {"head": "nose"},
}


def _names(topo: topology_lib.Topology, approximate: bool) -> list[tuple[str, ...]]:
  """Per joint, the names it answers to: its NTU-25 name (else its own), then a close one."""
  same = _SAME_POINT.get(topo.name, {})
  close = _CLOSE_POINT.get(topo.name, {}) if approximate else {}
  return [tuple(n for n in (same.get(name, name), close.get(name)) if n)
          for name in topo.joint_names]


def correspondence(src, dst, *, approximate: bool = False) -> np.ndarray:
  """int64[J_dst]: for each `dst` joint, the `src` joint at the same point, or -1.

  Args:
    src, dst: `Topology` objects or registry names.
    approximate: also pair joints that are only close (see the module docstring).
  """
  src = topology_lib.get(src) if isinstance(src, str) else src
  dst = topology_lib.get(dst) if isinstance(dst, str) else dst
  lookup: dict[str, int] = {}
  for j, names in enumerate(_names(src, approximate)):
    for n in names:
      lookup.setdefault(n, j)
  out = np.full(dst.num_joints, -1, np.int64)
  for j, names in enumerate(_names(dst, approximate)):
    for n in names:
      if n in lookup:
        out[j] = lookup[n]
        break
  return out


def convert(record: SkeletonRecord, dst, *, approximate: bool = False) -> SkeletonRecord:
  """The record in topology `dst`: corresponding joints copied, the others absent (valid 0).

  `metadata['converted_from']` names the source topology and lists the
  missing `dst` joints.
  """
  dst = topology_lib.get(dst) if isinstance(dst, str) else dst
  src = record.topology
  index = correspondence(src, dst, approximate=approximate)
  have = index >= 0
  t, p = record.positions.shape[:2]
  positions = np.zeros((t, p, dst.num_joints, 3), np.float32)
  valid = np.zeros((t, p, dst.num_joints), np.float32)
  positions[:, :, have] = record.positions[:, :, index[have]]
  valid[:, :, have] = record.valid[:, :, index[have]]
  meta = dict(record.metadata)
  meta.pop("topology", None)
  meta["converted_from"] = {
      "topology": src.name, "approximate": approximate,
      "missing": [dst.joint_names[j] for j in np.flatnonzero(~have)]}
  return dataclasses.replace(record, positions=positions, valid=valid, format=dst.name,
                             is_2d=record.is_2d, metadata=meta)
