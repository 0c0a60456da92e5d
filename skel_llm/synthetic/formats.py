"""Writing synthetic clips in other registry formats than NTU-25.

The generator computes, per person, the 25 NTU joints plus the rigid
`kinematics.LANDMARKS` (nose, eyes, ears, head top, extra spine and collar
points) in the Kinect camera frame. Each format below picks or derives its
joints from those points and uses the conventions of its real files:

| format | frame | units |
|---|---|---|
| ntu25, kinect20 | Kinect camera: x to the subject's right when facing the sensor, y up, z depth | m |
| h36m17 | ordinary camera: x image-right, y down, z depth | m |
| smpl22 | HumanML3D: floor at y = 0, y up, the scene centre at x = z = 0, subjects facing +z | m |
| coco17 | 640 x 480 image, y down, 60 degree vertical field of view | px |
| openpose18 | 340 x 256 frame (Kinetics-skeleton), y down, 60 degree vertical field of view | [0, 1] |

Kinect's x grows to the sensor's left (its colour frames are mirrored), so an
ordinary camera's image-right axis is -x; a subject facing the camera shows
their right side on the left of a COCO / OpenPose image, as in real photos.
"""

from __future__ import annotations

import numpy as np

from skel_llm.synthetic import kinematics as K

# Index of every named point in the generator's extended joint array.
_POINT = {name: i for i, name in enumerate((
    "spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
    "left_hand", "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip",
    "left_knee", "left_ankle", "left_foot", "right_hip", "right_knee", "right_ankle",
    "right_foot", "spine_shoulder", "left_hand_tip", "left_thumb", "right_hand_tip",
    "right_thumb") + K.LANDMARK_NAMES)}
NUM_POINTS = len(_POINT)

# Target joint name -> generator point name (same name when omitted).
_SOURCES = {
    "kinect20": {"hip_center": "spine_base", "spine": "spine_mid",
                 "shoulder_center": "spine_shoulder"},
    "h36m17": {"root": "spine_base", "right_foot": "right_ankle", "left_foot": "left_ankle",
               "spine": "spine_mid", "thorax": "spine_shoulder", "neck_base": "neck",
               "head": "head_top"},
    "smpl22": {"pelvis": "spine_base", "spine2": "spine_mid", "spine3": "spine3",
               "left_foot": "left_foot", "right_foot": "right_foot"},
    "coco17": {},
    "openpose18": {"neck": "spine_shoulder"},
}
IMAGE_SIZE = {"coco17": (640, 480), "openpose18": (340, 256)}  # (width, height)
FORMATS = ("ntu25",) + tuple(_SOURCES)


def point_indices(topology_name: str) -> np.ndarray:
  """int[J]: for each joint of the target topology, its index in the extended joint array."""
  from skel_llm.skeleton import topology

  target = topology.get(topology_name)
  if topology_name == "ntu25":
    return np.arange(K.NUM_NTU_JOINTS)
  if topology_name not in _SOURCES:
    raise ValueError(f"synthetic clips can be written as {list(FORMATS)}, not {topology_name!r}")
  names = _SOURCES[topology_name]
  return np.array([_POINT[names.get(j, j)] for j in target.joint_names])


def convert(points: np.ndarray, topology_name: str, *, scene_to_world: np.ndarray,
            scene_origin: np.ndarray) -> tuple[np.ndarray, dict]:
  """Positions of the extended points in the target format.

  Args:
    points: float[T, P, NUM_POINTS, 3] in the Kinect camera frame.
    topology_name: a name from `FORMATS`.
    scene_to_world: float[3, 3] rotation taking the scene frame (floor-level, subjects
      facing -z, before view yaw and camera tilt) to the camera frame.
    scene_origin: float[3] camera-frame position of the scene frame's origin (on the floor).

  Returns:
    (positions float32[T, P, J, 3] in the format's units, extra metadata).
  """
  picked = points[:, :, point_indices(topology_name)]
  if topology_name in ("ntu25", "kinect20"):
    return picked.astype(np.float32), {}
  if topology_name == "h36m17":
    return (picked * np.array([-1.0, -1.0, 1.0])).astype(np.float32), {}
  if topology_name == "smpl22":
    scene = (picked - scene_origin) @ scene_to_world  # row vectors: inverse rotation
    # HumanML3D subjects face +z: turn the scene half a turn about y.
    return (scene * np.array([-1.0, 1.0, -1.0])).astype(np.float32), {}
  width, height = IMAGE_SIZE[topology_name]
  f = height / (2.0 * np.tan(np.deg2rad(30.0)))
  z = np.maximum(picked[..., 2], 1e-6)
  u = -f * picked[..., 0] / z + width / 2.0
  v = -f * picked[..., 1] / z + height / 2.0
  uv = np.stack([u, v, np.zeros_like(u)], axis=-1)
  if topology_name == "openpose18":
    uv = uv / np.array([width, height, 1.0])
  return uv.astype(np.float32), {"image_size": (width, height)}
