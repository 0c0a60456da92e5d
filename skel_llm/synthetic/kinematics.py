"""Forward kinematics of a procedural NTU-25 body.

Axis letters: T frames, J joints (25 NTU joints plus one virtual lumbar joint).

The body frame is the Kinect camera frame of a person who faces the camera:
x points to the person's right, y up, z backwards (away from the camera), so
the person looks along -z. (In real NTU files the right shoulder has the
larger x when the subject faces the sensor; this frame reproduces that.)

A pose is a set of local joint rotations. Every joint's local rotation turns
the segments that hang below it in the tree, so bone lengths are constant by
construction. Rotation conventions used by the motion programs, each a
positive angle about a body axis:

- flexion of shoulder / hip (limb swings forward):  +angle about x
- knee flexion (shank folds backwards):             -angle about x
- elbow flexion (forearm folds forwards):           +angle about x
- abduction (limb moves away sideways):             right +z, left -z
- trunk forward bend:                               -angle about x
- trunk lean to the person's left:                  +angle about z
- turning to the person's left (yaw):               +angle about y
"""

from __future__ import annotations

import dataclasses

import numpy as np

# NTU joint indices (0-based, order of the dataset README).
SPINE_BASE, SPINE_MID, NECK, HEAD = 0, 1, 2, 3
L_SHOULDER, L_ELBOW, L_WRIST, L_HAND = 4, 5, 6, 7
R_SHOULDER, R_ELBOW, R_WRIST, R_HAND = 8, 9, 10, 11
L_HIP, L_KNEE, L_ANKLE, L_FOOT = 12, 13, 14, 15
R_HIP, R_KNEE, R_ANKLE, R_FOOT = 16, 17, 18, 19
SPINE_SHOULDER, L_HAND_TIP, L_THUMB, R_HAND_TIP, R_THUMB = 20, 21, 22, 23, 24
LUMBAR = 25  # virtual joint at the spine base: bends the trunk without moving the legs.
NUM_NTU_JOINTS = 25

# Joints of each side's limbs, used by the motion programs: side -> name -> joint.
LIMB = {
    "left": dict(shoulder=L_SHOULDER, elbow=L_ELBOW, wrist=L_WRIST, hand=L_HAND,
                 hip=L_HIP, knee=L_KNEE, ankle=L_ANKLE, foot=L_FOOT),
    "right": dict(shoulder=R_SHOULDER, elbow=R_ELBOW, wrist=R_WRIST, hand=R_HAND,
                  hip=R_HIP, knee=R_KNEE, ankle=R_ANKLE, foot=R_FOOT),
}
# Sign that mirrors a sideways (z-axis) rotation: abduction is +z on the right, -z on the left.
SIDE_SIGN = {"left": -1.0, "right": 1.0}

# (joint, parent) in an order where parents come first.
_TREE = (
    (SPINE_BASE, -1), (LUMBAR, SPINE_BASE), (SPINE_MID, LUMBAR), (SPINE_SHOULDER, SPINE_MID),
    (NECK, SPINE_SHOULDER), (HEAD, NECK),
    (L_SHOULDER, SPINE_SHOULDER), (L_ELBOW, L_SHOULDER), (L_WRIST, L_ELBOW), (L_HAND, L_WRIST),
    (L_HAND_TIP, L_HAND), (L_THUMB, L_HAND),
    (R_SHOULDER, SPINE_SHOULDER), (R_ELBOW, R_SHOULDER), (R_WRIST, R_ELBOW), (R_HAND, R_WRIST),
    (R_HAND_TIP, R_HAND), (R_THUMB, R_HAND),
    (L_HIP, SPINE_BASE), (L_KNEE, L_HIP), (L_ANKLE, L_KNEE), (L_FOOT, L_ANKLE),
    (R_HIP, SPINE_BASE), (R_KNEE, R_HIP), (R_ANKLE, R_KNEE), (R_FOOT, R_ANKLE),
)
PARENT = {j: p for j, p in _TREE}


@dataclasses.dataclass(frozen=True)
class Body:
  """Segment offsets of one person, in metres, in the body frame at rest.

  Attributes:
    offsets: float64[26, 3]; row j is joint j minus its parent at rest (row 0 unused).
    scale: the overall size factor the offsets were drawn with.
    height: approximate standing height (floor to top of head), metres.
    floor_to_root: height of the spine base above the floor at rest, metres.
  """

  offsets: np.ndarray
  height: float
  floor_to_root: float
  scale: float = 1.0


# Offsets of a ~1.7 m adult (Kinect joint centres: limbs are shorter than anatomical bones), scaled per person. Thigh and shank have equal length so a
# symmetric squat keeps the ankle under the hip (see `motions.squat_angles`).
_BASE_OFFSETS = {
    LUMBAR: (0.0, 0.0, 0.0),
    SPINE_MID: (0.0, 0.26, 0.0),
    SPINE_SHOULDER: (0.0, 0.20, 0.0),
    NECK: (0.0, 0.06, 0.0),
    HEAD: (0.0, 0.13, 0.0),
    L_SHOULDER: (-0.16, -0.04, 0.0), R_SHOULDER: (0.16, -0.04, 0.0),
    L_ELBOW: (0.0, -0.26, 0.0), R_ELBOW: (0.0, -0.26, 0.0),
    L_WRIST: (0.0, -0.24, 0.0), R_WRIST: (0.0, -0.24, 0.0),
    L_HAND: (0.0, -0.06, 0.0), R_HAND: (0.0, -0.06, 0.0),
    L_HAND_TIP: (0.0, -0.07, 0.0), R_HAND_TIP: (0.0, -0.07, 0.0),
    L_THUMB: (0.0, -0.01, -0.04), R_THUMB: (0.0, -0.01, -0.04),
    L_HIP: (-0.075, -0.02, 0.0), R_HIP: (0.075, -0.02, 0.0),
    L_KNEE: (0.0, -0.38, 0.0), R_KNEE: (0.0, -0.38, 0.0),
    L_ANKLE: (0.0, -0.38, 0.0), R_ANKLE: (0.0, -0.38, 0.0),
    L_FOOT: (0.0, -0.05, -0.09), R_FOOT: (0.0, -0.05, -0.09),
}


def make_body(rng: np.random.Generator, scale: float) -> Body:
  """A person of overall size `scale` (1 = about 1.6 m) with +-4 % per-segment proportions."""
  offsets = np.zeros((NUM_NTU_JOINTS + 1, 3))
  jitter = {}
  for j, off in _BASE_OFFSETS.items():
    # Left and right segments share one proportion so the body stays symmetric.
    key = _mirror_key(j)
    if key not in jitter:
      jitter[key] = 1.0 + rng.uniform(-0.04, 0.04)
    offsets[j] = np.asarray(off) * scale * jitter[key]
  # Keep thigh == shank exactly (squat geometry relies on it).
  for knee, ankle in ((L_KNEE, L_ANKLE), (R_KNEE, R_ANKLE)):
    offsets[ankle] = offsets[knee]
  # The foot joint (ball of the foot) rests on the floor.
  floor_to_root = -(offsets[L_HIP, 1] + offsets[L_KNEE, 1] + offsets[L_ANKLE, 1] + offsets[L_FOOT, 1])
  top = offsets[[SPINE_MID, SPINE_SHOULDER, NECK, HEAD], 1].sum() + 0.10 * scale
  return Body(offsets=offsets, height=float(floor_to_root + top), floor_to_root=float(floor_to_root),
              scale=float(scale))


_MIRROR = {L_SHOULDER: R_SHOULDER, L_ELBOW: R_ELBOW, L_WRIST: R_WRIST, L_HAND: R_HAND,
           L_HAND_TIP: R_HAND_TIP, L_THUMB: R_THUMB, L_HIP: R_HIP, L_KNEE: R_KNEE,
           L_ANKLE: R_ANKLE, L_FOOT: R_FOOT}


def _mirror_key(j: int) -> int:
  return _MIRROR.get(j, j)


def rot(axis: str, angle: np.ndarray) -> np.ndarray:
  """float64[T, 3, 3] right-handed rotations by `angle` (radians, float[T]) about a body axis."""
  angle = np.asarray(angle, np.float64)
  c, s = np.cos(angle), np.sin(angle)
  one, zero = np.ones_like(angle), np.zeros_like(angle)
  if axis == "x":
    rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
  elif axis == "y":
    rows = ((c, zero, s), (zero, one, zero), (-s, zero, c))
  elif axis == "z":
    rows = ((c, -s, zero), (s, c, zero), (zero, zero, one))
  else:
    raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
  return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


class Pose:
  """Accumulates local joint rotations over T frames.

  `add(joint, axis, angle)` post-multiplies the joint's local rotation, so the
  first rotation added is applied last to the segment (outermost). Motion
  programs add the main rotation first (e.g. flexion) and refinements after.
  """

  def __init__(self, num_frames: int):
    self.num_frames = num_frames
    self.local: dict[int, np.ndarray] = {}
    self.root_offset = np.zeros((num_frames, 3))

  def add(self, joint: int, axis: str, angle) -> Pose:
    angle = np.broadcast_to(np.asarray(angle, np.float64), (self.num_frames,))
    if not np.any(angle):
      return self
    r = rot(axis, angle)
    self.local[joint] = r if joint not in self.local else self.local[joint] @ r
    return self

  def translate(self, delta) -> Pose:
    """Moves the spine base by float[T, 3] (or float[3]) in the body frame."""
    self.root_offset = self.root_offset + np.broadcast_to(np.asarray(delta, np.float64),
                                                          self.root_offset.shape)
    return self


def forward_kinematics(body: Body, pose: Pose) -> np.ndarray:
  """float64[T, 25, 3] NTU joint positions in the body frame (spine base at `root_offset`).

  p_j = p_parent + R_parent @ offset_j and R_j = R_parent @ L_j, where L_j is
  the local rotation of joint j and R the accumulated (global) rotation.
  """
  return _fk(body, pose)[0][:, :NUM_NTU_JOINTS]


def _fk(body: Body, pose: Pose) -> tuple[np.ndarray, dict[int, np.ndarray]]:
  """(float64[T, 26, 3] positions incl. the virtual lumbar joint, {joint: float64[T, 3, 3]})."""
  t = pose.num_frames
  eye = np.broadcast_to(np.eye(3), (t, 3, 3))
  glob = {}
  pos = np.zeros((t, NUM_NTU_JOINTS + 1, 3))
  for j, parent in _TREE:
    local = pose.local.get(j, eye)
    if parent < 0:
      glob[j] = local
      pos[:, j] = pose.root_offset
      continue
    glob[j] = glob[parent] @ local if j in pose.local else glob[parent]
    pos[:, j] = pos[:, parent] + glob[parent] @ body.offsets[j]
  return pos, glob


# Points other skeleton formats need that NTU lacks, rigidly attached to a body segment:
# name -> (anchor joint, joint whose global rotation orients the segment, rest offset in metres
# for a body of scale 1). The head segment hangs below NECK's rotation, the chest below
# SPINE_MID's, the lower back below LUMBAR's.
LANDMARKS = {
    "nose": (HEAD, NECK, (0.0, -0.03, -0.10)),
    "left_eye": (HEAD, NECK, (-0.035, 0.0, -0.085)),
    "right_eye": (HEAD, NECK, (0.035, 0.0, -0.085)),
    "left_ear": (HEAD, NECK, (-0.075, -0.02, -0.01)),
    "right_ear": (HEAD, NECK, (0.075, -0.02, -0.01)),
    "head_top": (HEAD, NECK, (0.0, 0.10, 0.0)),
    "spine1": (SPINE_BASE, LUMBAR, (0.0, 0.10, 0.0)),
    "spine3": (SPINE_MID, SPINE_MID, (0.0, 0.12, 0.0)),
    "left_collar": (SPINE_SHOULDER, SPINE_SHOULDER, (-0.07, -0.01, 0.0)),
    "right_collar": (SPINE_SHOULDER, SPINE_SHOULDER, (0.07, -0.01, 0.0)),
}
LANDMARK_NAMES = tuple(LANDMARKS)


def forward_kinematics_with_landmarks(body: Body, pose: Pose) -> np.ndarray:
  """float64[T, 25 + len(LANDMARKS), 3]: NTU joints, then `LANDMARKS` in their order."""
  pos, glob = _fk(body, pose)
  extra = [pos[:, anchor] + glob[frame] @ (np.asarray(off) * body.scale)
           for anchor, frame, off in LANDMARKS.values()]
  return np.concatenate([pos[:, :NUM_NTU_JOINTS], np.stack(extra, axis=1)], axis=1)
