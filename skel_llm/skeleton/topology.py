"""Registry of skeleton topologies: joints, bones, sides, body parts, axes.

Every format that `skel_llm` reads maps onto one `Topology` here. The bone
order is significant: the renderer lays out its Gaussians bone by bone in this
order, so the NTU list matches the released DrAction checkpoints
(docs/method.md §2).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

PART_NAMES = ("head", "torso", "left_arm", "right_arm", "left_hand", "right_hand",
              "left_leg", "right_leg", "left_foot", "right_foot")


@dataclasses.dataclass(frozen=True)
class Topology:
  """A skeleton layout.

  Attributes:
    name: registry key, e.g. 'ntu25'.
    joint_names: J names, index = joint id (0-based).
    bones: (a, b) 0-based joint pairs; order is the renderer's bone order.
    root: index of the root joint.
    left_right: (left, right) joint pairs that mirror each other.
    parts: body-part name -> joint indices (keys from PART_NAMES).
    up_axis: '+y', '-y' or '+z': which axis points up in the source units.
    units: 'm', 'cm', 'px', 'normalized' or 'unknown' (BVH: the file's own units).
    is_2d: positions carry no depth.
  """

  name: str
  joint_names: tuple[str, ...]
  bones: tuple[tuple[int, int], ...]
  root: int
  left_right: tuple[tuple[int, int], ...]
  parts: Mapping[str, tuple[int, ...]]
  up_axis: str = "+y"
  units: str = "m"
  is_2d: bool = False

  def __post_init__(self):
    j = len(self.joint_names)
    for a, b in self.bones:
      if not (0 <= a < j and 0 <= b < j) or a == b:
        raise ValueError(f"topology {self.name}: bad bone ({a}, {b}) for {j} joints")
    for part in self.parts:
      if part not in PART_NAMES:
        raise ValueError(f"topology {self.name}: unknown body part {part!r}")

  @property
  def num_joints(self) -> int:
    return len(self.joint_names)

  @property
  def num_bones(self) -> int:
    return len(self.bones)

  def index(self, joint_name: str) -> int:
    return self.joint_names.index(joint_name)


_REGISTRY: dict[str, Topology] = {}


def register(topology: Topology) -> Topology:
  if topology.name in _REGISTRY:
    raise ValueError(f"topology {topology.name!r} is already registered")
  _REGISTRY[topology.name] = topology
  return topology


def get(name: str) -> Topology:
  try:
    return _REGISTRY[name]
  except KeyError:
    raise KeyError(f"unknown topology {name!r}; known: {sorted(_REGISTRY)}") from None


def names() -> list[str]:
  """Every registered topology: the built-in formats (`BUILTIN`) and any registered at run
  time (a BVH folder's own skeleton, `skel_llm.data.crossformat`)."""
  return sorted(_REGISTRY)


def _one_based(pairs):
  return tuple((a - 1, b - 1) for a, b in pairs)


# NTU RGB+D / Kinect v2, joint order of the dataset README (shahroudy/NTURGB-D).
NTU25 = register(Topology(
    name="ntu25",
    joint_names=(
        "spine_base", "spine_mid", "neck", "head",
        "left_shoulder", "left_elbow", "left_wrist", "left_hand",
        "right_shoulder", "right_elbow", "right_wrist", "right_hand",
        "left_hip", "left_knee", "left_ankle", "left_foot",
        "right_hip", "right_knee", "right_ankle", "right_foot",
        "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb"),
    # Bone order of the released DrAction checkpoints (1-based in their README).
    bones=_one_based([
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
        (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
        (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]),
    root=0,
    left_right=_one_based([(5, 9), (6, 10), (7, 11), (8, 12), (13, 17), (14, 18), (15, 19),
                           (16, 20), (22, 24), (23, 25)]),
    parts={
        "head": (2, 3), "torso": (0, 1, 20),
        "left_arm": (4, 5, 6), "right_arm": (8, 9, 10),
        "left_hand": (7, 21, 22), "right_hand": (11, 23, 24),
        "left_leg": (12, 13, 14), "right_leg": (16, 17, 18),
        "left_foot": (15,), "right_foot": (19,)},
    up_axis="+y", units="m"))


# Kinect v1 (NW-UCLA, MSR): the first 20 Kinect v2 joints without neck/hand tips/thumbs;
# joint order of the Kinect SDK 1.x NUI_SKELETON_POSITION_INDEX enum.
KINECT20 = register(Topology(
    name="kinect20",
    joint_names=(
        "hip_center", "spine", "shoulder_center", "head",
        "left_shoulder", "left_elbow", "left_wrist", "left_hand",
        "right_shoulder", "right_elbow", "right_wrist", "right_hand",
        "left_hip", "left_knee", "left_ankle", "left_foot",
        "right_hip", "right_knee", "right_ankle", "right_foot"),
    bones=((0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (6, 7), (2, 8), (8, 9), (9, 10),
           (10, 11), (0, 12), (12, 13), (13, 14), (14, 15), (0, 16), (16, 17), (17, 18), (18, 19)),
    root=0,
    left_right=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19)),
    parts={
        "head": (3,), "torso": (0, 1, 2),
        "left_arm": (4, 5, 6), "right_arm": (8, 9, 10),
        "left_hand": (7,), "right_hand": (11,),
        "left_leg": (12, 13, 14), "right_leg": (16, 17, 18),
        "left_foot": (15,), "right_foot": (19,)},
    up_axis="+y", units="m"))

# OpenPose COCO-18 (Kinetics-skeleton of ST-GCN): x, y in image coordinates, y down.
OPENPOSE18 = register(Topology(
    name="openpose18",
    joint_names=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear"),
    bones=((1, 0), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
           (1, 11), (11, 12), (12, 13), (0, 14), (14, 16), (0, 15), (15, 17)),
    root=1,
    left_right=((5, 2), (6, 3), (7, 4), (11, 8), (12, 9), (13, 10), (15, 14), (17, 16)),
    parts={
        "head": (0, 14, 15, 16, 17), "torso": (1,),
        "left_arm": (5, 6), "right_arm": (2, 3),
        "left_hand": (7,), "right_hand": (4,),
        "left_leg": (11, 12), "right_leg": (8, 9),
        "left_foot": (13,), "right_foot": (10,)},
    up_axis="-y", units="normalized", is_2d=True))

# COCO person keypoints; bones are the 19 links of the COCO `skeleton` field (1-based there).
COCO17 = register(Topology(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"),
    bones=_one_based([
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
        (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7)]),
    # COCO has no pelvis; the left hip is the root used for centring.
    root=11,
    left_right=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    parts={
        "head": (0, 1, 2, 3, 4), "torso": (5, 6, 11, 12),
        "left_arm": (5, 7), "right_arm": (6, 8),
        "left_hand": (9,), "right_hand": (10,),
        "left_leg": (11, 13), "right_leg": (12, 14),
        "left_foot": (15,), "right_foot": (16,)},
    up_axis="-y", units="px", is_2d=True))

# SMPL body joints 0..21 (HumanML3D new_joints); parents from the SMPL kinematic tree.
_SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)
SMPL22 = register(Topology(
    name="smpl22",
    joint_names=(
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
        "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
        "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist"),
    bones=tuple((p, c) for c, p in enumerate(_SMPL_PARENTS) if p >= 0),
    root=0,
    left_right=((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21)),
    parts={
        "head": (12, 15), "torso": (0, 3, 6, 9),
        "left_arm": (13, 16, 18), "right_arm": (14, 17, 19),
        "left_hand": (20,), "right_hand": (21,),
        "left_leg": (1, 4, 7), "right_leg": (2, 5, 8),
        "left_foot": (10,), "right_foot": (11,)},
    up_axis="+y", units="m"))

# Human3.6M 17 joints in mmpose order; 3D camera space (y down), metres.
H36M17 = register(Topology(
    name="h36m17",
    joint_names=(
        "root", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot",
        "spine", "thorax", "neck_base", "head", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist"),
    bones=((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
           (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16)),
    root=0,
    left_right=((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)),
    parts={
        "head": (9, 10), "torso": (0, 7, 8),
        "left_arm": (11, 12), "right_arm": (14, 15),
        "left_hand": (13,), "right_hand": (16,),
        "left_leg": (4, 5), "right_leg": (1, 2),
        "left_foot": (6,), "right_foot": (3,)},
    up_axis="-y", units="m"))

# The formats this package ships, registered above (names() also lists skeletons registered
# at run time).
BUILTIN = tuple(sorted(_REGISTRY))
