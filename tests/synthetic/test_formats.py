"""Synthetic clips written in other registry formats, checked against each format's real files."""

import numpy as np
import pytest

from skel_llm import synthetic as S
from skel_llm.skeleton import load, topology
from skel_llm.synthetic import formats

CLEAN = dict(noise_std=0.0, missing_prob=0.0)
NTU = topology.get("ntu25")


def _clip(fmt, label="raise left arm", seed=3, **kw):
  return S.generate_clip(label, seed, topology=fmt, **{**CLEAN, **kw})


def _j(fmt, name):
  return topology.get(fmt).index(name)


@pytest.mark.parametrize("fmt", ["kinect20", "h36m17", "smpl22"])
@pytest.mark.parametrize("label", ["bow", "kick right leg", "handshake", "turn left"])
def test_3d_formats_have_rigid_bones(fmt, label):
  r = _clip(fmt, label)
  top = topology.get(fmt)
  assert r.format == fmt and not r.is_2d and r.positions.shape[2] == top.num_joints
  # Kinect v1 has no neck joint: its shoulder_center-head bone spans the (moving) neck.
  spans_a_joint = {(2, 3)} if fmt == "kinect20" else set()
  for p in range(r.num_persons):
    for a, b in set(top.bones) - spans_a_joint:
      d = np.linalg.norm(r.positions[:, p, a] - r.positions[:, p, b], axis=-1)
      np.testing.assert_allclose(d, d[0], rtol=1e-5, atol=1e-6)


def test_kinect20_is_the_ntu_subset_in_the_same_frame():
  ntu, k20 = _clip("ntu25", noise_std=0.004), _clip("kinect20", noise_std=0.004)
  for name, src in (("hip_center", "spine_base"), ("shoulder_center", "spine_shoulder"),
                    ("left_wrist", "left_wrist"), ("right_foot", "right_foot")):
    np.testing.assert_array_equal(k20.positions[:, :, _j("kinect20", name)],
                                  ntu.positions[:, :, NTU.index(src)])


def test_h36m17_uses_a_y_down_camera_like_the_real_file(shared_data):
  real = load(shared_data / "real/h36m/test_h36m_body3d.npz").positions[:, 0]
  syn = _clip("h36m17", view_yaw_deg=0.0).positions[:, 0]
  ntu = _clip("ntu25", view_yaw_deg=0.0).positions[:, 0]
  for p in (real[0], syn[0]):
    assert p[_j("h36m17", "head"), 1] < p[_j("h36m17", "root"), 1]  # y points down
    assert p[_j("h36m17", "root"), 2] > 2.0  # metres in front of the camera
  np.testing.assert_allclose(syn[:, _j("h36m17", "left_wrist")],
                             ntu[:, NTU.index("left_wrist")] * [-1, -1, 1], atol=1e-6)
  # Bone lengths of the same order as the real subject's (long bones).
  top = topology.get("h36m17")
  ratios = [np.linalg.norm(syn[0, a] - syn[0, b]) / np.linalg.norm(real[0, a] - real[0, b])
            for a, b in top.bones if np.linalg.norm(real[0, a] - real[0, b]) > 0.2]
  assert 0.7 < np.median(ratios) < 1.4


def test_smpl22_follows_humanml3d_conventions(shared_data):
  real = load(shared_data / "real/humanml3d/new_joints/012314.npy").positions[:, 0]
  syn = _clip("smpl22", view_yaw_deg=35.0, camera_pitch_deg=6.0).positions[:, 0]
  for p in (real, syn):
    assert abs(p[..., 1].min()) < 0.03  # floor at y = 0
    assert 0.7 < p[0, 0, 1] < 1.1  # pelvis height
    # Facing +z: the left hip has the larger x.
    assert p[0, _j("smpl22", "left_hip"), 0] > p[0, _j("smpl22", "right_hip"), 0]
  np.testing.assert_allclose(syn[0, 0, [0, 2]], 0.0, atol=1e-6)  # single person: centred
  top = topology.get("smpl22")
  ratios = [np.linalg.norm(syn[0, a] - syn[0, b]) / np.linalg.norm(real[0, a] - real[0, b])
            for a, b in top.bones if np.linalg.norm(real[0, a] - real[0, b]) > 0.2]
  assert 0.7 < np.median(ratios) < 1.4


@pytest.mark.parametrize("fmt", ["coco17", "openpose18"])
def test_2d_formats_are_pinhole_projections(fmt):
  ntu = _clip("ntu25", view_yaw_deg=0.0)
  r = _clip(fmt, view_yaw_deg=0.0)
  assert r.is_2d and r.format == fmt
  np.testing.assert_array_equal(r.positions[..., 2], 0.0)
  width, height = r.metadata["image_size"]
  f = height / (2 * np.tan(np.deg2rad(30)))
  for name in ("left_shoulder", "right_knee", "left_wrist"):
    p = ntu.positions[:, 0, NTU.index(name)].astype(np.float64)
    u = -f * p[:, 0] / p[:, 2] + width / 2
    v = -f * p[:, 1] / p[:, 2] + height / 2
    got = r.positions[:, 0, _j(fmt, name), :2].astype(np.float64)
    scale = np.array([width, height]) if fmt == "openpose18" else np.ones(2)
    np.testing.assert_allclose(got * scale, np.stack([u, v], -1), rtol=1e-5, atol=1e-3)
  # Inside the frame, and as in a real photo of someone facing the camera: their left side is
  # on the right of the image, the head above the hips (y down).
  limit = (1.0, 1.0) if fmt == "openpose18" else (width, height)
  assert (r.positions[..., 0] >= 0).all() and (r.positions[..., 0] <= limit[0]).all()
  assert (r.positions[..., 1] >= 0).all() and (r.positions[..., 1] <= limit[1]).all()
  p = r.positions[0, 0]
  assert p[_j(fmt, "left_shoulder"), 0] > p[_j(fmt, "right_shoulder"), 0]
  assert p[_j(fmt, "nose"), 1] < p[_j(fmt, "left_hip"), 1]


def test_face_points_sit_on_the_head():
  r = _clip("coco17", view_yaw_deg=0.0)
  ntu = _clip("ntu25", view_yaw_deg=0.0)
  p = r.positions[:, 0]
  # Eyes between the ears, nose below the eyes, all within a head's width of the NTU head joint.
  assert (p[:, _j("coco17", "right_ear"), 0] < p[:, _j("coco17", "left_eye"), 0]).all()
  assert (p[:, _j("coco17", "left_eye"), 0] < p[:, _j("coco17", "left_ear"), 0]).all()
  assert (p[:, _j("coco17", "nose"), 1] > p[:, _j("coco17", "left_eye"), 1]).all()
  head = ntu.positions[:, 0, NTU.index("head")]
  f = 480 / (2 * np.tan(np.deg2rad(30)))
  head_px = np.stack([-f * head[:, 0] / head[:, 2] + 320, -f * head[:, 1] / head[:, 2] + 240], -1)
  assert np.abs(p[:, _j("coco17", "nose"), :2] - head_px).max() < f * 0.15 / head[:, 2].min()


def test_missing_joints_and_unknown_formats():
  r = _clip("openpose18", missing_prob=0.5)
  assert 0.4 < 1 - r.valid.mean() < 0.6
  np.testing.assert_array_equal(r.positions[r.valid == 0], 0.0)
  assert set(formats.FORMATS) <= set(topology.names())
  with pytest.raises(KeyError, match="unknown topology"):
    _clip("mano21")


@pytest.mark.parametrize("label", ["jump", "push"])
def test_smpl22_does_not_depend_on_the_camera(label):
  """HumanML3D coordinates live in the scene: view, distance, height and tilt drop out."""
  a = _clip("smpl22", label, view_yaw_deg=-30.0, camera_pitch_deg=-5.0, distance=2.7,
            lateral=-0.2, camera_height=0.8)
  b = _clip("smpl22", label, view_yaw_deg=25.0, camera_pitch_deg=7.0, distance=3.3,
            lateral=0.3, camera_height=1.05)
  np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)


def test_camera_steps_back_to_keep_raised_arms_in_view():
  r = _clip("ntu25", "raise right arm", camera_height=0.5, distance=1.6, camera_pitch_deg=8.0,
            amplitude=1.1, body_scale=1.1)
  assert r.metadata["camera_step_back"] > 0
  p = r.positions
  limit = np.tan(np.deg2rad(28.0)) + 1e-6
  assert (np.abs(p[..., :2]).max(-1) / p[..., 2]).max() <= limit
  # The scene itself is unchanged: the same clip in HumanML3D coordinates as from afar.
  near = _clip("smpl22", "raise right arm", camera_height=0.5, distance=1.6, camera_pitch_deg=8.0,
               amplitude=1.1, body_scale=1.1)
  far = _clip("smpl22", "raise right arm", camera_height=0.5, distance=4.0, camera_pitch_deg=8.0,
              amplitude=1.1, body_scale=1.1)
  np.testing.assert_allclose(near.positions, far.positions, atol=1e-5)
