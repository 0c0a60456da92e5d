"""Registry of skeleton topologies: joints, bones, sides, body parts, axes.

Every format that `skel_llm` reads maps onto one `Topology` here. The bone
order is significant: the renderer lays out its Gaussians bone by bone in this
order, so the NTU list matches the released DrAction checkpoints
(../shared/data/draction_reference/README.md).
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
    units: 'm', 'cm', 'px' or 'normalized'.
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
