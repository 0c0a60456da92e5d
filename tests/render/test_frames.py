"""`skel_llm.render.frames` (jit selection on padded sequences) against the host rules and real data."""

import json

import jax
import jax.numpy as jnp
import numpy as np

from skel_llm.render import frames
from skel_llm.skeleton import load, sampling


def test_eval_indices_match_host_midpoints():
  fn = jax.jit(lambda t: frames.segment_indices(t, 12))
  for t in list(range(1, 60)) + [103, 299, 1000]:
    np.testing.assert_array_equal(np.asarray(fn(t)), sampling.segment_indices(t, 12), err_msg=t)


def test_reference_frame_indices(shared_data):
  manifest = json.loads((shared_data / "draction_reference" / "manifest.json").read_text())
  for name, entry in manifest.items():
    if "frame_indices" in entry:
      got = frames.segment_indices(entry["source_num_frames"], entry["num_frames"])
      np.testing.assert_array_equal(np.asarray(got), entry["frame_indices"], err_msg=name)


def test_train_indices_one_per_segment_and_cover_it():
  fn = jax.jit(jax.vmap(lambda k, t: frames.segment_indices(t, 12, k), in_axes=(0, None)))
  keys = jax.random.split(jax.random.key(0), 400)
  for t in (12, 30, 71):
    idx = np.asarray(fn(keys, t))
    lo = np.floor(np.arange(12) * t / 12).astype(int)
    hi = np.floor(np.arange(1, 13) * t / 12).astype(int)
    assert ((idx >= lo) & (idx < hi)).all(), t
    for i in range(12):  # every index of every segment is drawn
      assert set(np.unique(idx[:, i])) == set(range(lo[i], hi[i])), (t, i)
  short = np.asarray(fn(keys, 5))
  assert (np.diff(short, axis=1) >= 0).all() and short.min() == 0 and short.max() == 4


def test_padded_batch_matches_host_selection_on_real_clips(shared_data):
  names = ["S001C003P008R002A058", "S001C001P001R001A005", "S003C001P015R001A034"]
  seqs = []
  for n in names:
    pos = load(shared_data / "real" / "ntu_skeleton" / f"{n}.skeleton", bodies="first").positions
    if pos.shape[1] == 1:
      pos = np.concatenate([pos, np.zeros_like(pos)], axis=1)
    seqs.append(sampling.depth_shift(pos))
  t_max = 128
  padded = np.stack([np.pad(s, ((0, t_max - len(s)), (0, 0), (0, 0), (0, 0)),
                            constant_values=99.0) for s in seqs])  # padding must never be read
  lengths = np.array([len(s) for s in seqs], np.int32)
  poses, vels, idx = jax.jit(frames.select_frames_batch)(padded, lengths)
  for b, s in enumerate(seqs):
    p, v, i = sampling.select_frames(s, 12)
    np.testing.assert_array_equal(np.asarray(idx[b]), i)
    np.testing.assert_array_equal(np.asarray(poses[b]), p)
    np.testing.assert_array_equal(np.asarray(vels[b]), v)
  # The reference npz stores exactly these selected poses and velocities.
  ref = np.load(shared_data / "draction_reference" / "S001C003P008R002A058_01_448.npz")
  np.testing.assert_array_equal(np.asarray(poses[0]), ref["poses"])
  np.testing.assert_array_equal(np.asarray(vels[0]), ref["vels"])
  # Training selection never reads the padding either.
  p_tr, v_tr, _ = jax.jit(frames.select_frames_batch)(padded, lengths, rng=jax.random.key(3))
  assert float(jnp.abs(p_tr).max()) < 10 and float(jnp.abs(v_tr).max()) < 10
