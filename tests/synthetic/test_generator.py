"""The synthetic generator against outside facts: rigid bones, true descriptions, camera frame.

Body parts are taken from the NTU-25 entry of the topology registry, not from
the generator, so "which part moves" is judged independently of how the
motion was made.
"""

import re

import numpy as np
import pytest

from skel_llm import synthetic as S
from skel_llm.skeleton import SkeletonRecord, topology

NTU = topology.get("ntu25")
J = {name: i for i, name in enumerate(NTU.joint_names)}
CLEAN = dict(noise_std=0.0, missing_prob=0.0)
# Limbs as unions of registry parts.
LIMBS = {
    ("left", "upper"): NTU.parts["left_arm"] + NTU.parts["left_hand"],
    ("right", "upper"): NTU.parts["right_arm"] + NTU.parts["right_hand"],
    ("left", "lower"): NTU.parts["left_leg"] + NTU.parts["left_foot"],
    ("right", "lower"): NTU.parts["right_leg"] + NTU.parts["right_foot"],
    ("", "head"): NTU.parts["head"],
    ("", "torso"): NTU.parts["torso"],
}
LIMB_OF_PART = {"arm": "upper", "hand": "upper", "leg": "lower"}


def _number(pattern, text):
  m = re.search(pattern, text)
  assert m, f"{pattern!r} not in description:\n{text}"
  return float(m.group(1))


def _facing(p):
  """float[T, 3] horizontal facing direction from the hips (up x person's right)."""
  right = p[:, J["right_hip"]] - p[:, J["left_hip"]]
  f = np.cross([0.0, 1.0, 0.0], right)
  f[:, 1] = 0
  return f / np.linalg.norm(f, axis=-1, keepdims=True)


@pytest.mark.parametrize("label", range(len(S.CLASS_NAMES)))
def test_every_clip_has_rigid_bones_and_the_record_contract(label):
  r = S.generate_clip(label, seed=label + 7, num_frames=40, **CLEAN)
  assert isinstance(r, SkeletonRecord) and r.format == "ntu25" and not r.is_2d
  persons = 2 if label in S.TWO_PERSON_LABELS else 1
  assert r.positions.shape == (40, persons, 25, 3) and r.positions.dtype == np.float32
  np.testing.assert_array_equal(r.valid, 1.0)
  for p in range(persons):
    for a, b in NTU.bones:
      lengths = np.linalg.norm(r.positions[:, p, a] - r.positions[:, p, b], axis=-1)
      assert lengths.min() > 0.02
      np.testing.assert_allclose(lengths, lengths[0], rtol=1e-5, atol=1e-6)
  md = r.metadata
  assert md["label"] == S.CLASS_NAMES[label] and md["label_index"] == label
  c = S.CLASSES[label]
  assert (md["verb"], md["side"], md["part"]) == (c.verb, c.side, c.part)
  lines = md["description"].split("\n")
  assert lines[-1] == f"Label: {c.name}" and len(lines) >= 4
  assert all(line.startswith(f"{i + 1}. ") for i, line in enumerate(lines[:-1]))
  if c.side in ("left", "right") and persons == 1 and c.verb not in ("turn", "lean"):
    assert f"{c.side} {c.part}" in md["description"]


# "hop on left leg" names the leg that carries the body, not the one that moves: see test_motions.
@pytest.mark.parametrize("label", [i for i, c in enumerate(S.CLASSES)
                                   if c.persons == 1 and c.side in ("left", "right")
                                   and c.part in LIMB_OF_PART and c.verb != "hop"])
def test_the_described_limb_is_the_one_that_moves_most(label):
  c = S.CLASSES[label]
  for seed in range(3):
    p = S.generate_clip(label, seed, **CLEAN).positions[:, 0].astype(np.float64)
    travel = np.linalg.norm(p - p[:1], axis=-1).max(axis=0)  # [J] farthest excursion
    motion = {limb: travel[list(joints)].mean() for limb, joints in LIMBS.items()}
    described = (c.side, LIMB_OF_PART[c.part])
    others = max(v for k, v in motion.items() if k != described)
    assert motion[described] > 2.0 * others, (c.name, seed, motion)
    desc = S.generate_clip(label, seed, **CLEAN).metadata["description"]
    assert f"{c.side} {c.part}" in desc


def test_clips_are_deterministic_per_seed():
  for label in (0, 17, S.label_index("push")):
    a = S.generate_clip(label, 123)
    b = S.generate_clip(label, 123)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.valid, b.valid)
    assert a.metadata == b.metadata
    c = S.generate_clip(label, 124)
    assert not np.allclose(a.positions, c.positions)
  # Seeds that agree in their low 32 bits, or differ only in sign, are different clips.
  base = S.generate_clip(3, 5).positions
  for other in (5 + 2**32, -5):
    assert not np.allclose(base, S.generate_clip(3, other).positions)


def test_clips_look_like_ntu_kinect_data(shared_data):
  """Same axes, depth range and body size as a real NTU sample (A001, subject facing the camera)."""
  real = np.load(shared_data / "real/ntu_skeleton/S001C001P001R001A001.skeleton.npy",
                 allow_pickle=True).item()["skel_body0"]
  syn = S.generate_clip("bow", 0, view_yaw_deg=0.0, body_scale=1.0, **CLEAN).positions[:, 0]
  for p in (real[0], syn[0]):
    assert p[J["right_shoulder"], 0] > p[J["left_shoulder"], 0]  # person's right is +x
    assert p[J["head"], 1] > p[J["spine_base"], 1] > p[J["right_foot"], 1]  # y is up
    assert 2.0 < p[J["spine_base"], 2] < 4.5  # metres in front of the camera
  real_len = {(a, b): np.median(np.linalg.norm(real[:, a] - real[:, b], axis=-1))
              for a, b in NTU.bones}
  ratios = [np.linalg.norm(syn[0, a] - syn[0, b]) / real_len[a, b] for a, b in NTU.bones
            if real_len[a, b] > 0.1]  # long bones only: Kinect hand/foot joints are noisy
  assert 0.75 < np.median(ratios) < 1.35 and min(ratios) > 0.6 and max(ratios) < 1.7


@pytest.mark.parametrize("seed", range(4))
def test_every_joint_is_inside_a_60_degree_camera(seed):
  half = np.tan(np.deg2rad(30.0))
  for label in range(len(S.CLASS_NAMES)):
    p = S.generate_clip(label, seed).positions
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    assert z.min() > 1.5
    assert np.abs(x / z).max() < half and np.abs(y / z).max() < half, S.CLASS_NAMES[label]


def test_feet_rest_on_a_floor_camera_height_below_the_camera():
  r = S.generate_clip("raise left arm", 5, camera_pitch_deg=0.0, camera_height=0.9, **CLEAN)
  feet = r.positions[:, 0, [J["left_foot"], J["right_foot"]], 1]
  np.testing.assert_allclose(feet, -0.9, atol=0.02)


@pytest.mark.parametrize("seed", range(3))
def test_raise_arm_description_matches_the_hand_height(seed):
  r = S.generate_clip("raise right arm", seed, camera_pitch_deg=0.0, **CLEAN)
  p, desc = r.positions[:, 0], r.metadata["description"]
  t = np.argmax(p[:, J["right_hand"], 1])
  hand, head, shoulder = p[t, J["right_hand"], 1], p[t, J["head"], 1], p[t, J["right_shoulder"], 1]
  if "above the head" in desc:
    assert hand > head
  elif "above shoulder height" in desc:
    assert shoulder < hand
  elif "about shoulder height" in desc:
    assert abs(hand - shoulder) < 0.12
  else:
    assert hand < shoulder


@pytest.mark.parametrize("seed", range(3))
def test_jump_height_in_the_description_is_the_ankle_lift(seed):
  r = S.generate_clip("jump", seed, camera_pitch_deg=0.0, **CLEAN)
  cm = _number(r"rises about (\d+) cm", r.metadata["description"])
  ankles = r.positions[:, 0, [J["left_ankle"], J["right_ankle"]], 1]
  lift = (ankles - ankles[0]).max()
  assert abs(100 * lift - cm) < 1.5


@pytest.mark.parametrize("side", ["left", "right"])
def test_turn_rotates_the_body_the_stated_way_and_amount(side):
  for seed in range(3):
    r = S.generate_clip(f"turn {side}", seed, camera_pitch_deg=0.0, **CLEAN)
    f = _facing(r.positions[:, 0].astype(np.float64))
    # Signed rotation about +y from the first to the last facing; + turns toward the person's left.
    signed = np.degrees(np.arctan2(np.cross(f[0], f[-1])[1], f[0] @ f[-1]))
    stated = _number(rf"turns about (\d+) degrees to the {side}", r.metadata["description"])
    assert abs(abs(signed) - stated) <= 6.0
    assert (signed > 0) == (side == "left")


@pytest.mark.parametrize("seed", range(3))
def test_bow_tips_the_trunk_forward_by_the_stated_angle(seed):
  r = S.generate_clip("bow", seed, camera_pitch_deg=0.0, **CLEAN)
  p = r.positions[:, 0].astype(np.float64)
  trunk = p[:, J["spine_shoulder"]] - p[:, J["spine_base"]]
  trunk /= np.linalg.norm(trunk, axis=-1, keepdims=True)
  t = np.argmin(trunk[:, 1])
  tilt = np.degrees(np.arccos(trunk[t, 1]))
  assert abs(tilt - _number(r"tipping about (\d+) degrees", r.metadata["description"])) < 4.0
  # Forward means toward where the person faces.
  assert trunk[t] @ _facing(p)[0] > 0.3


@pytest.mark.parametrize("side", ["left", "right"])
def test_lean_goes_toward_the_named_side(side):
  r = S.generate_clip(f"lean {side}", 2, camera_pitch_deg=0.0, **CLEAN)
  p = r.positions[:, 0].astype(np.float64)
  right = p[0, J["right_hip"]] - p[0, J["left_hip"]]
  shift = p[:, J["spine_shoulder"]] - p[0, J["spine_shoulder"]]
  peak = shift[np.argmax(np.linalg.norm(shift, axis=-1))]
  assert (peak @ right > 0) == (side == "right")


def test_squat_lowers_the_body_with_the_feet_planted():
  r = S.generate_clip("squat", 4, **CLEAN)
  p = r.positions[:, 0]
  feet = p[:, [J["left_foot"], J["right_foot"], J["left_ankle"], J["right_ankle"]]]
  np.testing.assert_allclose(feet, np.broadcast_to(feet[:1], feet.shape), atol=1e-5)
  assert p[:, J["spine_base"], 1].min() < p[0, J["spine_base"], 1] - 0.1


def test_handshake_right_hands_meet():
  for seed in range(3):
    p = S.generate_clip("handshake", seed, **CLEAN).positions
    gap = np.linalg.norm(p[:, 0, J["right_hand"]] - p[:, 1, J["right_hand"]], axis=-1)
    assert gap.min() < 0.12 and gap[0] > 0.4


def test_push_reaches_the_chest_and_moves_the_other_person_back():
  for seed in range(3):
    r = S.generate_clip("push", seed, **CLEAN)
    p, desc = r.positions, r.metadata["description"]
    pusher = 0 if desc.split("\n")[1].startswith("2. The person on the left") else 1
    pushed = 1 - pusher
    if p[0, 0, 0, 0] / p[0, 0, 0, 2] > p[0, 1, 0, 0] / p[0, 1, 0, 2]:
      pusher, pushed = pushed, pusher  # person 0 appears on the right of the picture
    hands = p[:, pusher, [J["left_hand"], J["right_hand"]]]
    chest = p[:, pushed, J["spine_shoulder"]][:, None]
    assert np.linalg.norm(hands - chest, axis=-1).min() < 0.25
    moved = np.linalg.norm(p[-1, pushed, J["spine_base"]] - p[0, pushed, J["spine_base"]])
    assert abs(100 * moved - _number(r"pushed backward about (\d+) cm", desc)) < 1.5


def test_knobs_change_what_they_name():
  base = S.generate_clip("swing left arm", 9, **CLEAN)
  noisy = S.generate_clip("swing left arm", 9, noise_std=0.01, missing_prob=0.0)
  assert 0.008 < np.std(noisy.positions - base.positions) < 0.012
  dropped = S.generate_clip("swing left arm", 9, noise_std=0.0, missing_prob=0.3)
  assert 0.25 < 1 - dropped.valid.mean() < 0.35
  np.testing.assert_array_equal(dropped.positions[dropped.valid == 0], 0.0)
  np.testing.assert_array_equal(dropped.positions[dropped.valid == 1],
                                base.positions[dropped.valid == 1])
  big = S.generate_clip("swing left arm", 9, body_scale=1.1, **CLEAN).positions[0, 0]
  small = S.generate_clip("swing left arm", 9, body_scale=0.9, **CLEAN).positions[0, 0]
  for a, b in NTU.bones:
    ratio = np.linalg.norm(big[a] - big[b]) / np.linalg.norm(small[a] - small[b])
    assert abs(ratio - 1.1 / 0.9) < 1e-4
  fast = S.generate_clip("raise left arm", 9, speed=2.0, **CLEAN).positions[:, 0]
  slow = S.generate_clip("raise left arm", 9, speed=0.8, **CLEAN).positions[:, 0]

  def moving_frames(p):
    return int((np.linalg.norm(p[:, J["left_hand"]] - p[0, J["left_hand"]], axis=-1) > 0.05).sum())

  assert moving_frames(fast) < 0.75 * moving_frames(slow)


def test_bad_arguments_raise_clear_errors():
  with pytest.raises(TypeError, match="unknown variation knob"):
    S.generate_clip(0, 0, sped=2.0)
  with pytest.raises(ValueError, match="speed"):
    S.generate_clip(0, 0, speed=0.0)
  with pytest.raises(ValueError, match="at least 2 frames"):
    S.generate_clip(0, 0, num_frames=1)
  with pytest.raises(KeyError, match="unknown topology"):
    S.generate_clip(0, 0, topology="no_such_format")
