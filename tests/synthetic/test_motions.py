"""Descriptions tell the truth: angles, counts and directions measured on the generated joints.

Clips are generated facing the camera with no tilt or noise, so the camera
frame is the body frame: x to the person's right, y up, forward is -z.
"""

import re

import numpy as np
import pytest

from skel_llm import synthetic as S
from skel_llm.skeleton import topology

J = {n: i for i, n in enumerate(topology.get("ntu25").joint_names)}
FRONT = dict(view_yaw_deg=0.0, camera_pitch_deg=0.0, noise_std=0.0, missing_prob=0.0)
SEEDS = range(4)


def _clip(label, seed):
  r = S.generate_clip(label, seed, **FRONT)
  return r.positions[:, 0].astype(np.float64), r.metadata["description"]


def _number(pattern, text):
  m = re.search(pattern, text)
  assert m, f"{pattern!r} not in:\n{text}"
  return m.group(1)


def _count(word):
  return {"once": 1, "twice": 2}.get(word) or int(word.split()[0])


def _sagittal(p, a, b):
  """Degrees the segment a->b points forward of straight down (in the y-z plane)."""
  v = p[:, J[b]] - p[:, J[a]]
  return np.degrees(np.arctan2(-v[:, 2], -v[:, 1]))


def _frontal(p, a, b):
  """Degrees the segment a->b points sideways (toward +x) from straight down (x-y plane)."""
  v = p[:, J[b]] - p[:, J[a]]
  return np.degrees(np.arctan2(v[:, 0], -v[:, 1]))


def _peaks(x, height):
  """Number of local maxima of x above `height` (plateaus count once)."""
  above = x > height
  return int(np.sum(above[1:] & ~above[:-1]) + above[0])


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", SEEDS)
def test_swing_arm_count_and_amplitude(side, seed):
  p, desc = _clip(f"swing {side} arm", seed)
  n = _count(_number(r"like a pendulum (once|twice|\d+ times)", desc))
  amp = float(_number(r"about (\d+) degrees to each side", desc))
  angle = _sagittal(p, f"{side}_shoulder", f"{side}_elbow")
  assert _peaks(angle, amp / 2) == n and _peaks(-angle, amp / 2) == n
  assert abs(angle.max() - amp) < 6 and abs(-angle.min() - amp) < 6


@pytest.mark.parametrize("seed", SEEDS)
def test_swing_leg_count_and_amplitude(seed):
  p, desc = _clip("swing right leg", seed)
  n = _count(_number(r"from the hip (once|twice|\d+ times)", desc))
  amp = float(_number(r"about (\d+) degrees each way", desc))
  angle = _sagittal(p, "right_hip", "right_knee")
  assert _peaks(angle, amp / 2) == n
  assert abs(angle.max() - amp) < 4


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", SEEDS)
def test_raise_leg_angle(side, seed):
  p, desc = _clip(f"raise {side} leg", seed)
  stated = float(_number(r"knee straight, to about (\d+) degrees", desc))
  assert abs(_sagittal(p, f"{side}_hip", f"{side}_ankle").max() - stated) < 4
  other = {"left": "right", "right": "left"}[side]
  assert np.abs(_sagittal(p, f"{other}_hip", f"{other}_ankle")).max() < 3  # standing leg


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", SEEDS)
def test_stretch_arm_angle_and_side(side, seed):
  p, desc = _clip(f"stretch {side} arm", seed)
  stated = float(_number(r"about (\d+) degrees from the body", desc))
  sideways = _frontal(p, f"{side}_shoulder", f"{side}_wrist") * (1 if side == "right" else -1)
  assert abs(sideways.max() - stated) < 4  # and toward the named side (positive)
  if "about shoulder height" in desc:
    t = np.argmax(sideways)
    assert abs(p[t, J[f"{side}_wrist"], 1] - p[t, J[f"{side}_shoulder"], 1]) < 0.15


@pytest.mark.parametrize("seed", SEEDS)
def test_bend_leg_knee_angle(seed):
  p, desc = _clip("bend left leg", seed)
  stated = float(_number(r"knee folding about (\d+)", desc))
  thigh = p[:, J["left_knee"]] - p[:, J["left_hip"]]
  shank = p[:, J["left_ankle"]] - p[:, J["left_knee"]]
  cos = np.sum(thigh * shank, -1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shank, axis=-1)
  assert abs(np.degrees(np.arccos(np.clip(cos, -1, 1))).max() - stated) < 3
  assert (p[:, J["left_ankle"], 2] - p[0, J["left_ankle"], 2]).max() > 0.15  # foot goes back (+z)


@pytest.mark.parametrize("seed", SEEDS)
def test_bend_arm_curls(seed):
  p, desc = _clip("bend right arm", seed)
  stated = float(_number(r"elbow, about (\d+) degrees", desc))
  n = 2 if "done twice" in desc else 1
  upper = p[:, J["right_elbow"]] - p[:, J["right_shoulder"]]
  fore = p[:, J["right_wrist"]] - p[:, J["right_elbow"]]
  cos = np.sum(upper * fore, -1) / np.linalg.norm(upper, axis=-1) / np.linalg.norm(fore, axis=-1)
  bend = np.degrees(np.arccos(np.clip(cos, -1, 1)))
  assert abs(bend.max() - stated) < 4 and _peaks(bend, stated / 2) == n


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", SEEDS)
def test_wave_hand_is_beside_the_head_and_waves_n_times(side, seed):
  p, desc = _clip(f"wave {side} hand", seed)
  n = _count(_number(r"from side to side (once|twice|\d+ times)", desc))
  wave = float(_number(r"swinging about (\d+) degrees", desc))
  forearm = np.mod(_frontal(p, f"{side}_elbow", f"{side}_wrist"), 360)  # about 180 when upright
  upper = np.abs(_frontal(p, f"{side}_shoulder", f"{side}_elbow"))
  raised = upper > upper.max() - 3  # the upper arm has reached its sideways hold
  assert 75 < upper.max() < 105  # "about level with the shoulder"
  t = np.argmax(p[:, J[f"{side}_hand"], 1])
  assert p[t, J[f"{side}_hand"], 1] > p[t, J["neck"], 1]  # hand up beside the head
  sway = np.where(raised, forearm - np.median(forearm[raised]), 0.0)
  assert _peaks(sway, wave / 2) == n and _peaks(-sway, wave / 2) == n


@pytest.mark.parametrize("seed", SEEDS)
def test_clap_count(seed):
  p, desc = _clip("clap hands", seed)
  n = _count(_number(r"clap together in front of the chest (once|twice|\d+ times)", desc))
  gap = np.linalg.norm(p[:, J["left_hand"]] - p[:, J["right_hand"]], axis=-1)
  closed = gap < 0.12
  assert int(np.sum(closed[1:] & ~closed[:-1]) + closed[0]) == n
  t = np.argmin(gap)
  assert p[t, J["left_hand"], 2] < p[t, J["spine_shoulder"], 2] - 0.2  # in front of the chest


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", SEEDS)
def test_kick_reaches_the_stated_angle_with_a_straight_leg(side, seed):
  p, desc = _clip(f"kick {side} leg", seed)
  stated = float(_number(r"kicking forward at about (\d+) degrees", desc))
  leg = _sagittal(p, f"{side}_hip", f"{side}_ankle")
  t = np.argmax(leg)
  thigh = _sagittal(p, f"{side}_hip", f"{side}_knee")[t]
  assert abs(thigh - stated) < 4 and abs(leg[t] - thigh) < 15  # knee nearly straight


@pytest.mark.parametrize("seed", SEEDS)
def test_punch_goes_forward_at_shoulder_height(seed):
  p, desc = _clip("punch with left hand", seed)
  reach = -(p[:, J["left_hand"], 2] - p[:, J["spine_shoulder"], 2])
  t = np.argmax(reach)
  assert reach[t] > 0.45
  below = p[t, J["left_shoulder"], 1] - p[t, J["left_hand"], 1]
  assert below < 0.12 if "shoulder height" in desc else 0.05 < below < 0.35
  n = 2 if "thrown twice" in desc else 1
  assert _peaks(reach, 0.8 * reach[t]) == n


@pytest.mark.parametrize("seed", SEEDS)
def test_squat_angle(seed):
  p, desc = _clip("squat", seed)
  stated = float(_number(r"thighs about (\d+) degrees from vertical", desc))
  assert abs(_sagittal(p, "left_hip", "left_knee").max() - stated) < 4


@pytest.mark.parametrize("label", [c.name for c in S.CLASSES if c.persons == 1])
def test_limbs_said_to_stay_still_stay_still(label):
  parts = topology.get("ntu25").parts
  for seed in range(2):
    p, desc = _clip(label, seed)
    still = []
    m = re.search(r"The (left|right) arm and (?:both|the) legs stay still", desc)
    if m:
      still += [f"{m.group(1)}_arm", f"{m.group(1)}_hand"]
    if m or "The legs stay still" in desc:
      still += ["left_leg", "right_leg", "left_foot", "right_foot"]
    if not still:
      continue
    travel = np.linalg.norm(p - p[:1], axis=-1).max(axis=0)  # [J]
    joints = [j for part in still for j in parts[part]]
    assert travel[joints].max() < 0.03, (label, seed)  # only the quiet-standing sway


@pytest.mark.parametrize("seed", SEEDS)
def test_nod_moves_the_head_forward_n_times(seed):
  p, desc = _clip("nod head", seed)
  n = _count(_number(r"the head dips (once|twice|\d+ times)", desc))
  stated = float(_number(r"head forward, about (\d+) degrees", desc))
  seg = p[:, J["head"]] - p[:, J["neck"]]
  tilt = np.degrees(np.arccos(seg[:, 1] / np.linalg.norm(seg, axis=-1)))  # from straight up
  assert abs(tilt.max() - stated) < 3.5  # rounding to 5 degrees plus the standing sway
  forward = -(p[:, J["head"], 2] - p[0, J["head"], 2])
  assert _peaks(forward, forward.max() / 2) == n
  travel = np.linalg.norm(p - p[:1], axis=-1).max(axis=0)
  assert travel[J["head"]] > 2 * np.delete(travel, J["head"]).max()  # only the head moves


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seed", SEEDS)
def test_hop_lifts_the_body_n_times_on_the_named_leg(side, seed):
  p, desc = _clip(f"hop on {side} leg", seed)
  free = {"left": "right", "right": "left"}[side]
  n = _count(_number(r"the person hops (once|twice|\d+ times)", desc))
  cm = float(_number(r"rising about (\d+) cm", desc))
  ankle = p[:, J[f"{side}_ankle"]] - p[0, J[f"{side}_ankle"]]
  assert abs(100 * ankle[:, 1].max() - cm) < 1.0
  assert _peaks(ankle[:, 1], ankle[:, 1].max() / 2) == n
  np.testing.assert_allclose(ankle[:, [0, 2]], 0.0, atol=1e-5)  # lands where it took off
  # The other foot is held up behind the body for the whole hopping part.
  lifted = p[:, J[f"{free}_ankle"], 1] - p[0, J[f"{free}_ankle"], 1]
  behind = p[:, J[f"{free}_ankle"], 2] - p[0, J[f"{free}_ankle"], 2]
  hopping = ankle[:, 1] > 0.005
  assert (lifted[hopping] > 0.08).all() and (behind[hopping] > 0.15).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_march_alternates_knees_starting_with_the_named_one(seed):
  p, desc = _clip("march in place", seed)
  first = _number(r"lifting the (left|right) knee first", desc)
  total = int(_number(r"(\d+) knee raises in all", desc))
  thigh = float(_number(r"each thigh rising to about (\d+) degrees", desc))
  lifts = {s: p[:, J[f"{s}_knee"], 1] - p[0, J[f"{s}_knee"], 1] for s in ("left", "right")}
  peaks = {s: _peaks(v, 0.04) for s, v in lifts.items()}  # a knee rises 7+ cm per raise
  assert peaks["left"] == peaks["right"] == total // 2
  firsts = {s: int(np.argmax(v > 0.04)) for s, v in lifts.items()}
  assert min(firsts, key=firsts.get) == first
  for s in ("left", "right"):
    assert abs(_sagittal(p, f"{s}_hip", f"{s}_knee").max() - thigh) < 4
    shank = _sagittal(p, f"{s}_knee", f"{s}_ankle")
    assert np.abs(shank).max() < 3  # the lower leg hangs straight down
