import numpy as np
import pytest

from skel_llm.skeleton import sampling


def test_midpoints_match_reference_frame_indices():
  # Frame indices stored with the authors' reference renders (manifest.json).
  assert sampling.segment_indices(103, 12).tolist() == [4, 12, 21, 30, 38, 47, 55, 64, 72, 81, 90, 98]
  assert sampling.segment_indices(54, 12).tolist() == [2, 6, 11, 15, 20, 24, 29, 33, 38, 42, 47, 51]


def test_random_indices_stay_in_their_segment_and_short_clips_sort():
  rng = np.random.default_rng(0)
  for t in (12, 13, 70, 300):
    idx = sampling.segment_indices(t, 12, rng)
    edges = np.floor(np.arange(13) * t / 12).astype(int)
    assert np.all(idx >= edges[:-1]) and np.all(idx < edges[1:])
  idx = sampling.segment_indices(5, 12, rng)
  assert np.all(np.diff(idx) >= 0) and idx.max() < 5


def test_velocity_stride_clamps_at_end():
  p = np.arange(10, dtype=np.float32)[:, None] ** 2
  v = sampling.velocities(p, stride=4)
  assert v[0, 0] == 16 and v[9, 0] == 0 and v[7, 0] == 81 - 49


def test_depth_shift_only_moves_present_skeletons():
  p = np.zeros((2, 2, 3, 3), np.float32)
  p[:, 0, :, 2] = 0.2
  out = sampling.depth_shift(p)
  assert np.allclose(out[:, 0, :, 2], 1.2) and np.all(out[:, 1] == 0)
  p[:, 0, :, 2] = 3.0
  assert np.array_equal(sampling.depth_shift(p), p)


def _rotation(rng):
  q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
  return q * np.sign(np.linalg.det(q))


def test_view_normalisation_removes_any_camera_pose(shared_data):
  from skel_llm import skeleton
  from skel_llm.skeleton import topology
  rec = skeleton.load(shared_data / "real/ntu_skeleton/S001C003P008R002A058.skeleton")
  rng = np.random.default_rng(3)
  moved = rec.positions @ _rotation(rng).T.astype(np.float32) + np.float32([0.4, -1.0, 2.0])
  a = sampling.view_normalise(rec.positions, "ntu25", valid=rec.valid)
  b = sampling.view_normalise(moved, topology.NTU25, valid=rec.valid)
  np.testing.assert_allclose(a, b, atol=2e-5)
  # Rigid: every distance between joints is kept.
  d0 = np.linalg.norm(rec.positions[5, 0, :, None] - rec.positions[5, 1, None], axis=-1)
  d1 = np.linalg.norm(a[5, 0, :, None] - a[5, 1, None], axis=-1)
  np.testing.assert_allclose(d0, d1, atol=1e-5)
  # Reference frame 0: hips centred at the origin, shoulders straight up, left -> right along +x.
  ls, rs, lh, rh = (topology.NTU25.index(n) for n in
                    ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
  np.testing.assert_allclose((a[0, 0, lh] + a[0, 0, rh]) / 2, 0, atol=1e-6)
  up = (a[0, 0, ls] + a[0, 0, rs]) / 2
  assert up[1] > 0.3 and abs(up[0]) < 1e-6 and abs(up[2]) < 1e-6
  side = a[0, 0, rs] - a[0, 0, ls] + a[0, 0, rh] - a[0, 0, lh]
  assert side[0] > 0 and abs(side[2]) < 1e-6


def test_view_normalisation_keeps_absent_joints_zero_and_refuses_2d():
  p = np.zeros((3, 2, 25, 3), np.float32)
  rng = np.random.default_rng(0)
  p[:, 0] = rng.normal(size=(3, 25, 3))
  out = sampling.view_normalise(p, "ntu25")
  assert np.all(out[:, 1] == 0) and np.all(out[:, 0] != 0)
  with pytest.raises(ValueError, match="2D"):
    sampling.view_normalise(np.zeros((2, 1, 17, 3)), "coco17")
