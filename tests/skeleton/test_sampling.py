import numpy as np

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
