"""NTU `.skeleton` parser against the real files and the official converter output."""

import logging

import numpy as np
import pytest

from skel_llm import skeleton
from skel_llm.skeleton import ntu
from skel_llm.skeleton.errors import SkeletonFormatError

NTU_FRAMES = {  # from ../shared/data/real/ntu_skeleton/SOURCES.md
    "S001C001P001R001A001": 103, "S001C001P001R001A005": 54, "S001C001P001R001A011": 82,
    "S001C003P008R002A058": 70, "S002C001P003R001A003": 100, "S003C001P015R001A034": 71,
    "S004C002P003R001A017": 124,
}


def test_every_real_file_parses_with_its_documented_frame_count(shared_data):
  for name, frames in NTU_FRAMES.items():
    rec = skeleton.load(shared_data / "real/ntu_skeleton" / f"{name}.skeleton")
    assert rec.format == "ntu25" and rec.num_frames == frames and rec.fps == 30.0
    meta = ntu.parse_name(name)
    for key in ("setup", "camera", "subject", "replication", "action"):
      assert rec.metadata[key] == meta[key]
    assert rec.metadata["label"] == int(name[-3:]) - 1
    expected_persons = 2 if name.endswith("A058") else 1
    assert rec.num_persons == expected_persons
    assert np.all(rec.valid == 1.0)
    # Kinect camera space: the subjects stand 2-5 m in front of the sensor.
    assert 1.5 < np.median(rec.positions[..., 2]) < 5.0


def test_a001_equals_official_txt2npy_output_exactly(shared_data):
  d = shared_data / "real/ntu_skeleton"
  ref = np.load(d / "S001C001P001R001A001.skeleton.npy", allow_pickle=True).item()
  rec = skeleton.load(d / "S001C001P001R001A001.skeleton")
  assert ref["njoints"] == 25
  assert rec.metadata["bodies_per_frame"].tolist() == list(ref["nbodys"])
  assert rec.positions.shape == (103, 1, 25, 3)
  assert np.array_equal(rec.positions[:, 0], ref["skel_body0"].astype(np.float32))


def test_crlf_and_lf_copies_parse_identically(shared_data, tmp_path):
  src = shared_data / "real/ntu_skeleton/S001C001P001R001A001.skeleton"
  raw = src.read_bytes()
  assert b"\r\n" in raw
  lf = tmp_path / "S001C001P001R001A001.skeleton"
  lf.write_bytes(raw.replace(b"\r\n", b"\n"))
  a, b = skeleton.load(src), skeleton.load(lf)
  assert np.array_equal(a.positions, b.positions)
  assert np.array_equal(a.metadata["tracking_state"], b.metadata["tracking_state"])


def test_a058_keeps_two_bodies_in_all_70_frames(shared_data):
  rec = skeleton.load(shared_data / "real/ntu_skeleton/S001C003P008R002A058.skeleton")
  assert rec.positions.shape == (70, 2, 25, 3)
  assert np.all(rec.valid == 1.0)
  assert np.all(rec.metadata["bodies_per_frame"] == 2)
  sel = rec.metadata["body_selection"]
  assert sel["method"] == "denoise" and not sel["removed"] and not sel["discarded"]
  # Actor 1 is the body that moves most (summed joint variance), as in the standard denoising.
  motions = {bid: b["motion"] for bid, b in sel["bodies"].items()}
  assert sel["actors"][0] == [max(motions, key=motions.get)]
  # Header line quoted in third-party format notes: the first body is 72057594037944738.
  first = skeleton.load(shared_data / "real/ntu_skeleton/S001C003P008R002A058.skeleton",
                        bodies="first")
  assert first.positions.shape == (70, 2, 25, 3)
  ids = sorted(sel["bodies"])
  assert "72057594037944738" in ids
  # Same two skeletons either way, only the slot order may differ.
  assert {first.positions[:, 0].tobytes(), first.positions[:, 1].tobytes()} == {
      rec.positions[:, 0].tobytes(), rec.positions[:, 1].tobytes()}


def test_first_bodies_match_the_reference_render_poses(shared_data):
  ref = np.load(shared_data / "draction_reference/S001C003P008R002A058_01_448.npz")
  rec = skeleton.load(shared_data / "real/ntu_skeleton/S001C003P008R002A058.skeleton",
                      bodies="first")
  np.testing.assert_allclose(rec.positions[ref["frame_indices"]], ref["poses"], rtol=0, atol=0)


def _ntu_text(frames):
  """An NTU file: frames = list of lists of (body_id, float[25, 3])."""
  out = [str(len(frames))]
  for bodies in frames:
    out.append(str(len(bodies)))
    for bid, xyz in bodies:
      out.append(f"{bid} 0 1 1 1 1 0 0.01 -0.2 2")
      out.append("25")
      for x, y, z in xyz:
        out.append(f"{x:.6f} {y:.6f} {z:.6f} 250 200 900 500 0.1 0.2 0.3 0.4 2")
  return "\r\n".join(out) + "\r\n"


def _body(rng, center, spread=(0.4, 1.6)):
  xyz = rng.normal(size=(25, 3)) * np.array([spread[0], spread[1], 0.1]) / 4
  return xyz + center


def test_denoising_drops_short_and_spread_noise_bodies_and_records_why(tmp_path):
  rng = np.random.default_rng(0)
  t = 40
  frames = []
  for f in range(t):
    bodies = [("111", _body(rng, [0.0, 0.0, 3.0]) + [0.01 * f, 0, 0]),
              ("222", _body(rng, [1.0, 0.0, 3.0]))]
    if f < 5:  # a 5-frame ghost: removed by length
      bodies.append(("333", _body(rng, [2.0, 0.0, 3.0])))
    # a wide flat object (x-spread >> y-spread) seen in every frame: removed by spread
    bodies.append(("444", _body(rng, [-1.0, 0.0, 3.0], spread=(3.0, 0.2))))
    frames.append(bodies)
  frames.append([])  # an empty frame stays, as an invalid frame
  p = tmp_path / "S001C001P001R001A050.skeleton"
  p.write_text(_ntu_text(frames))
  rec = skeleton.load(p)
  sel = rec.metadata["body_selection"]
  assert set(sel["removed"]) == {"333", "444"}
  assert "length" in sel["removed"]["333"] and "spread" in sel["removed"]["444"]
  assert rec.positions.shape == (t + 1, 2, 25, 3)
  assert sel["empty_frames"] == 1 and np.all(rec.valid[t] == 0) and np.all(rec.valid[:t] == 1)
  # Both survivors move; actor 1 is the one with more motion.
  assert sel["actors"][0][0] == max(("111", "222"), key=lambda b: sel["bodies"][b]["motion"])


def test_denoising_chains_non_overlapping_bodies_into_one_actor(tmp_path):
  rng = np.random.default_rng(1)
  frames = []
  for f in range(60):
    # The tracker lost the actor at frame 30 and gave it a new ID.
    bid = "1" if f < 30 else "2"
    frames.append([(bid, _body(rng, [0.3 * np.sin(f / 5), 0, 3.0])), ("9", _body(rng, [1, 0, 3]))])
  p = tmp_path / "S001C001P001R001A001.skeleton"
  p.write_text(_ntu_text(frames))
  rec = skeleton.load(p)
  sel = rec.metadata["body_selection"]
  assert rec.num_persons == 2 and np.all(rec.valid == 1)
  assert sorted(sel["actors"][0]) == ["1", "2"] and sel["actors"][1] == ["9"]


def test_missing_skeleton_lists_are_read_and_applied_with_a_counted_log(shared_data, caplog):
  d = shared_data / "real/ntu_skeleton"
  ntu60 = skeleton.read_missing_skeletons(d / "NTU_RGBD_samples_with_missing_skeletons.txt")
  ntu120 = skeleton.read_missing_skeletons(d / "NTU_RGBD120_samples_with_missing_skeletons.txt")
  assert len(ntu60) == 302 and len(ntu120) == 535 and ntu60 <= ntu120
  assert "S001C002P005R002A008" in ntu60
  paths = [d / f"{n}.skeleton" for n in NTU_FRAMES] + ["x/S001C002P005R002A008.skeleton"]
  with caplog.at_level(logging.INFO):
    kept = skeleton.filter_missing(paths, ntu60, list_name="NTU-60 list")
  assert len(kept) == len(NTU_FRAMES)
  assert "skipped 1 of 8 samples listed in NTU-60 list" in caplog.text


def test_missing_list_with_wrong_count_is_rejected(tmp_path):
  p = tmp_path / "list.txt"
  p.write_text("3 of the captured samples in the dataset have missing data.\nignore them.\n\n"
               "S001C002P005R002A008\nS001C002P006R001A008\n")
  with pytest.raises(SkeletonFormatError, match="promises 3"):
    skeleton.read_missing_skeletons(p)


def test_short_clips_keep_their_bodies_and_first_mode_counts_drops(tmp_path):
  rng = np.random.default_rng(2)
  frames = [[("1", _body(rng, [0, 0, 3])), ("2", _body(rng, [1, 0, 3])),
             ("3", _body(rng, [2, 0, 3]))] for _ in range(6)]
  p = tmp_path / "S001C001P001R001A055.skeleton"
  p.write_text(_ntu_text(frames))
  rec = skeleton.load(p)
  sel = rec.metadata["body_selection"]
  # All 3 bodies are seen in only 6 frames (<= 11): dropping them all would leave nothing.
  assert "length_filter_skipped" in sel and not sel["removed"]
  assert rec.num_persons == 2 and len(sel["discarded"]) == 1
  first = skeleton.load(p, bodies="first")
  assert first.metadata["body_selection"]["dropped_occurrences"] == 6
  as_written = [[[float(f"{v:.6f}") for v in joint] for joint in f[1][1]] for f in frames]
  np.testing.assert_array_equal(first.positions[:, 1], np.float32(as_written))


def test_one_body_id_twice_in_a_frame_names_the_second_header_line(shared_data, tmp_path):
  src = shared_data / "real/ntu_skeleton/S001C003P008R002A058.skeleton"
  lines = src.read_text().split("\n")
  first_id = lines[2].split()[0]  # frame 1 holds two bodies: headers on lines 3 and 30
  lines[29] = " ".join([first_id] + lines[29].split()[1:])
  p = tmp_path / src.name
  p.write_text("\n".join(lines))
  with pytest.raises(skeleton.SkeletonFormatError, match=r"line 30: actor \d holds two bodies in "
                     r"frame 1"):
    skeleton.load(p)
