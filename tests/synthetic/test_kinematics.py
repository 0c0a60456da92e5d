"""Forward kinematics of the synthetic body: rotations, rest pose, rigid bones, squat geometry."""

import numpy as np
import pytest

from skel_llm.skeleton import topology
from skel_llm.synthetic import kinematics as K
from skel_llm.synthetic import motions

NTU = topology.get("ntu25")


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_rot_is_a_proper_rotation_about_the_axis(axis):
  angles = np.linspace(-3.0, 3.0, 7)
  r = K.rot(axis, angles)
  np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape),
                             atol=1e-12)
  np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
  e = np.eye(3)["xyz".index(axis)]
  np.testing.assert_allclose(r @ e, np.broadcast_to(e, (7, 3)), atol=1e-12)


def test_rot_follows_the_right_hand_rule():
  # A quarter turn about z takes x to y; about x takes y to z; about y takes z to x.
  q = np.array([np.pi / 2])
  np.testing.assert_allclose(K.rot("z", q)[0] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
  np.testing.assert_allclose(K.rot("x", q)[0] @ [0, 1, 0], [0, 0, 1], atol=1e-12)
  np.testing.assert_allclose(K.rot("y", q)[0] @ [0, 0, 1], [1, 0, 0], atol=1e-12)
  with pytest.raises(ValueError, match="axis"):
    K.rot("w", q)


def test_rest_pose_is_an_upright_person_facing_minus_z():
  body = K.make_body(np.random.default_rng(0), 1.0)
  p = K.forward_kinematics(body, K.Pose(3))[0]
  # Head above neck above spine above the root; feet below the knees below the hips.
  assert p[K.HEAD, 1] > p[K.NECK, 1] > p[K.SPINE_SHOULDER, 1] > p[K.SPINE_MID, 1] > 0
  assert p[K.L_ANKLE, 1] < p[K.L_KNEE, 1] < p[K.L_HIP, 1] < 0
  # The person's right is +x (as in NTU files), toes and thumbs point forward (-z).
  assert p[K.R_SHOULDER, 0] > 0 > p[K.L_SHOULDER, 0]
  assert p[K.R_HIP, 0] > 0 > p[K.L_HIP, 0]
  assert p[K.L_FOOT, 2] < p[K.L_ANKLE, 2] and p[K.R_THUMB, 2] < p[K.R_HAND, 2]
  # Left and right limbs mirror each other in x.
  for a, b in NTU.left_right:
    np.testing.assert_allclose(p[a] * [-1, 1, 1], p[b], atol=1e-12)
  # The floor (foot joints) is floor_to_root below the root.
  np.testing.assert_allclose(p[[K.L_FOOT, K.R_FOOT], 1], -body.floor_to_root, atol=1e-12)


def test_bones_keep_their_length_under_any_rotations():
  rng = np.random.default_rng(1)
  body = K.make_body(rng, 1.05)
  t = 20
  pose = K.Pose(t)
  for j in range(K.NUM_NTU_JOINTS + 1):
    for axis in "xyz":
      pose.add(j, axis, rng.uniform(-2, 2, t))
  pose.translate(rng.normal(size=(t, 3)))
  p = K.forward_kinematics(body, pose)
  rest = K.forward_kinematics(body, K.Pose(1))[0]
  for a, b in NTU.bones:
    lengths = np.linalg.norm(p[:, a] - p[:, b], axis=-1)
    np.testing.assert_allclose(lengths, np.linalg.norm(rest[a] - rest[b]), rtol=1e-10)


def test_shoulder_flexion_by_90_degrees_points_the_arm_forward():
  body = K.make_body(np.random.default_rng(2), 1.0)
  pose = K.Pose(1).add(K.R_SHOULDER, "x", np.pi / 2)
  p = K.forward_kinematics(body, pose)[0]
  arm = p[K.R_WRIST] - p[K.R_SHOULDER]
  length = -(body.offsets[K.R_ELBOW, 1] + body.offsets[K.R_WRIST, 1])
  np.testing.assert_allclose(arm, [0, 0, -length], atol=1e-12)


def test_squat_keeps_the_feet_planted_and_drops_the_root():
  body = K.make_body(np.random.default_rng(3), 0.95)
  alpha = np.deg2rad(np.linspace(0, 80, 9))
  pose = K.Pose(9)
  motions.squat_angles(pose, body, alpha)
  p = K.forward_kinematics(body, pose)
  feet = p[:, [K.L_ANKLE, K.L_FOOT, K.R_ANKLE, K.R_FOOT]]
  np.testing.assert_allclose(feet, np.broadcast_to(feet[:1], feet.shape), atol=1e-12)
  drop = p[0, K.SPINE_BASE, 1] - p[:, K.SPINE_BASE, 1]
  thigh = -body.offsets[K.L_KNEE, 1]
  np.testing.assert_allclose(drop, 2 * thigh * (1 - np.cos(alpha)), atol=1e-12)
  # Knees move forward (-z) as the hips flex.
  assert np.all(np.diff(p[:, K.L_KNEE, 2]) < 0)


def test_body_scale_scales_every_segment():
  small = K.make_body(np.random.default_rng(4), 0.9)
  large = K.make_body(np.random.default_rng(4), 1.1)
  np.testing.assert_allclose(large.offsets, small.offsets * 1.1 / 0.9, atol=1e-12)
  assert large.height > small.height
