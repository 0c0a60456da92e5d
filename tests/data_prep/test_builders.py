"""Every TFDS builder builds from a fixture folder into a temporary data dir and reads back.

Real sample files are read in place from ../shared/data/real (symlinked into a
temporary manual folder where the builder expects a layout); files the sample
set lacks (label lists, split lists, NW-UCLA JSON) are written by the test.
Read-back goes through `tfds.data_source` (no TensorFlow) and is compared
with the skeleton parsers' own output for the same file.
"""

import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_prep import common
from skel_llm import synthetic
from skel_llm.data import classnames
from skel_llm.skeleton import SkeletonFormatError, load


def _build(builder_cls, data_dir, manual_dir=None, config=None):
  builder = builder_cls(config=config, data_dir=os.fspath(data_dir), file_format="array_record")
  dl = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)) if manual_dir else None
  builder.download_and_prepare(download_config=dl)
  return builder


def _read(name, data_dir, split):
  ds = tfds.data_source(name, data_dir=os.fspath(data_dir), split=split)
  return {common.text(ex["name"]): ex for ex in (ds[i] for i in range(len(ds)))}


def test_synthetic_actions_compositional(tmp_path):
  from data_prep.synthetic_actions import synthetic_actions_dataset_builder as b

  cfg = b.SyntheticConfig(name="tiny", num_train=6, num_test=3, num_frames=16, compositional=True,
                          topology="smpl22")
  _build(b.Builder, tmp_path, config=cfg)
  seen, unseen = synthetic.compositional_split(0)
  train = _read("synthetic_actions/tiny", tmp_path, "train")
  test_unseen = _read("synthetic_actions/tiny", tmp_path, "test_unseen")
  assert len(train) == 6 and len(test_unseen) == 3
  assert {int(e["label"]) for e in train.values()} <= set(seen)
  assert {int(e["label"]) for e in test_unseen.values()} <= set(unseen)
  for ex in list(train.values()) + list(test_unseen.values()):
    rec = synthetic.generate_clip(int(ex["label"]), int(ex["seed"]), num_frames=16,
                                  topology="smpl22")
    positions, valid = common.decode(ex)
    np.testing.assert_array_equal(positions, rec.positions)
    np.testing.assert_array_equal(valid, rec.valid)
    assert common.text(ex["description"]) == rec.metadata["description"]
    assert common.text(ex["format"]) == "smpl22" and int(ex["num_joints"]) == 22


def test_ntu_rgbd_from_the_real_samples(tmp_path, shared_data):
  from data_prep.ntu_rgbd import ntu_rgbd_dataset_builder as b

  src = shared_data / "real/ntu_skeleton"
  _build(b.Builder, tmp_path, src, "ntu60_xsub")
  train = _read("ntu_rgbd/ntu60_xsub", tmp_path, "train")
  test = _read("ntu_rgbd/ntu60_xsub", tmp_path, "test")
  # Performers 1, 8, 15 are NTU-60 training subjects, performer 3 is not.
  assert sorted(train) == ["S001C001P001R001A001", "S001C001P001R001A005",
                           "S001C001P001R001A011", "S001C003P008R002A058",
                           "S003C001P015R001A034"]
  assert sorted(test) == ["S002C001P003R001A003", "S004C002P003R001A017"]
  ex = train["S001C003P008R002A058"]
  assert int(ex["label"]) == 57 and int(ex["subject"]) == 8 and int(ex["camera"]) == 3
  positions, valid = common.decode(ex)
  rec = load(src / "S001C003P008R002A058.skeleton")
  assert positions.shape[1] == 2  # handshaking: both actors kept
  np.testing.assert_array_equal(positions, rec.positions)
  np.testing.assert_array_equal(valid, rec.valid)
  # The official converter's output for A001 is the outside reference for the coordinates.
  ref = np.load(src / "S001C001P001R001A001.skeleton.npy", allow_pickle=True).item()["skel_body0"]
  np.testing.assert_allclose(common.decode(train["S001C001P001R001A001"])[0][:, 0], ref,
                             atol=1e-6)


def test_ntu_rgbd_skips_listed_samples_and_keeps_ntu60_apart(tmp_path, shared_data):
  from data_prep.ntu_rgbd import ntu_rgbd_dataset_builder as b

  manual = tmp_path / "manual"
  manual.mkdir()
  for f in (shared_data / "real/ntu_skeleton").glob("*.skeleton"):
    (manual / f.name).symlink_to(f)
  (manual / "NTU_RGBD120_samples_with_missing_skeletons.txt").write_text(
      "1 of the captured samples in the \"NTU RGB+D 120\" dataset have missing skeletons.\n\n"
      "S002C001P003R001A003\n")
  _build(b.Builder, tmp_path / "dd", manual, "ntu120_xset")
  train = _read("ntu_rgbd/ntu120_xset", tmp_path / "dd", "train")
  test = _read("ntu_rgbd/ntu120_xset", tmp_path / "dd", "test")
  # Even setups train under cross-setup; the listed sample is gone.
  assert sorted(train) == ["S004C002P003R001A017"]
  assert len(test) == 5 and all(n.startswith(("S001", "S003")) for n in test)
  # The NTU-60 configs need their own list and say so.
  with pytest.raises(FileNotFoundError, match="NTU_RGBD_samples_with_missing_skeletons.txt"):
    _build(b.Builder, tmp_path / "dd60", manual, "ntu60_xview")


def _pku_manual(tmp_path, shared_data, split_text):
  manual = tmp_path / "manual"
  (manual / "PKU_Skeleton_Renew").mkdir(parents=True)
  (manual / "Train_Label_PKU_final").mkdir()
  (manual / "PKU_Skeleton_Renew/A10N08-L.txt").symlink_to(shared_data / "real/pku_mmd/A10N08-L.txt")
  (manual / "Train_Label_PKU_final/A10N08-L.txt").write_text(
      "1,10,70,1\n14,100,180,2\n51,900,1040,1\n")
  (manual / "cross-subject.txt").write_text(split_text)
  return manual


def test_pku_mmd_segments_from_the_real_sequence(tmp_path, shared_data):
  from data_prep.pku_mmd import pku_mmd_dataset_builder as b

  manual = _pku_manual(tmp_path, shared_data,
                       "Training videos: \nA10N08-L, 0002-M\nValidataion videos: \n0291-L\n")
  builder = _build(b.Builder, tmp_path / "dd", manual, "xsub")
  train = _read("pku_mmd/xsub", tmp_path / "dd", "train")
  assert sorted(train) == ["A10N08-L_000", "A10N08-L_001", "A10N08-L_002"]
  assert list(builder.info.splits) == ["train"]  # no validation video was given
  whole = load(shared_data / "real/pku_mmd/A10N08-L.txt")
  for name, (label, start, end) in zip(sorted(train), [(0, 10, 70), (13, 100, 180),
                                                       (50, 900, 1040)]):
    ex = train[name]
    assert int(ex["label"]) == label and (int(ex["start"]), int(ex["end"])) == (start, end)
    positions, _ = common.decode(ex)
    np.testing.assert_array_equal(positions, whole.positions[start:end])
  assert classnames.PKU_MMD_CLASSES[int(train["A10N08-L_001"]["label"])] == "handshaking"


def test_pku_mmd_rejects_bad_split_lists(tmp_path, shared_data):
  from data_prep.pku_mmd import pku_mmd_dataset_builder as b

  manual = _pku_manual(tmp_path, shared_data, "A10N08-L\nTraining videos:\n0002-M\n")
  with pytest.raises(SkeletonFormatError, match="line 1: expected a 'Training videos:' header"):
    _build(b.Builder, tmp_path / "dd", manual, "xsub")
  (manual / "cross-subject.txt").write_text("Training videos:\n0002-M\nValidation videos:\n0003-L")
  with pytest.raises(ValueError, match="A10N08-L is in neither list"):
    _build(b.Builder, tmp_path / "dd2", manual, "xsub")


def _ucla_json(path, name, label, frames):
  path.write_text(json.dumps({"file_name": name, "skeletons": frames.tolist(), "label": label}))


def test_nw_ucla_cross_view_from_written_fixtures(tmp_path):
  from data_prep.nw_ucla import nw_ucla_dataset_builder as b

  rng = np.random.default_rng(0)
  manual = tmp_path / "all_sqe"
  manual.mkdir()
  clips = {"a01_s01_e00_v01": 1, "a11_s02_e01_v02": 9, "a12_s03_e02_v03": 10}
  frames = {n: rng.normal(size=(5 + i, 20, 3)).round(4) for i, n in enumerate(clips)}
  for n, label in clips.items():
    _ucla_json(manual / f"{n}.json", n, label, frames[n])
  _build(b.Builder, tmp_path / "dd", manual)
  train = _read("nw_ucla", tmp_path / "dd", "train")
  test = _read("nw_ucla", tmp_path / "dd", "test")
  assert sorted(train) == ["a01_s01_e00_v01", "a11_s02_e01_v02"] and list(test) == [
      "a12_s03_e02_v03"]
  assert int(train["a11_s02_e01_v02"]["label"]) == 8  # action a11 is "throw"
  assert classnames.NW_UCLA_CLASSES[int(test["a12_s03_e02_v03"]["label"])] == "carry"
  for n, ex in {**train, **test}.items():
    positions, _ = common.decode(ex)
    np.testing.assert_allclose(positions[:, 0], frames[n], atol=1e-6)
    assert common.text(ex["format"]) == "kinect20"
  _ucla_json(manual / "a02_s01_e00_v01.json", "a02_s01_e00_v01", 5, frames["a01_s01_e00_v01"])
  with pytest.raises(ValueError, match="disagrees with action id a02"):
    _build(b.Builder, tmp_path / "dd2", manual)


def test_kinetics_skeleton_from_the_real_clips(tmp_path, shared_data):
  from data_prep.kinetics_skeleton import kinetics_skeleton_dataset_builder as b

  src = shared_data / "real/kinetics_skeleton"
  _build(b.Builder, tmp_path, src)
  val = _read("kinetics_skeleton", tmp_path, "validation")
  expected = {"__NrybzYzUg": ("abseiling", 0), "__u6odV5hrI": ("parkour", 207),
              "__vOysOPoCY": ("parkour", 207), "__U_scuxNlQ": ("clay pottery making", 58),
              "__PYrzYbzKE": ("jumpstyle dancing", 173)}
  assert {k: (common.text(e["label_name"]), int(e["label"])) for k, e in val.items()} == expected
  for clip, ex in val.items():
    rec = load(src / f"{clip}.json")
    positions, valid = common.decode(ex)
    np.testing.assert_array_equal(positions, rec.positions)
    np.testing.assert_array_equal(valid, rec.valid)
    assert bool(ex["is_2d"]) and int(ex["num_joints"]) == 18 and int(ex["num_persons"]) <= 2


def test_humanml3d_with_captions(tmp_path, shared_data):
  from data_prep.humanml3d import humanml3d_dataset_builder as b

  manual = tmp_path / "HumanML3D"
  (manual / "texts").mkdir(parents=True)
  (manual / "new_joints").symlink_to(shared_data / "real/humanml3d/new_joints")
  (manual / "texts/012314.txt").write_text(
      "a person serves a tennis ball.#a/DET person/NOUN serve/VERB a/DET tennis/NOUN "
      "ball/NOUN#0.0#0.0\n"
      "someone tosses a ball up and swings overhead.#someone/PRON toss/VERB#1.0#5.5\n")
  (manual / "test.txt").write_text("012314\n")
  _build(b.Builder, tmp_path / "dd", manual)
  test = _read("humanml3d", tmp_path / "dd", "test")
  ex = test["012314"]
  assert [common.text(c) for c in ex["captions"]] == [
      "a person serves a tennis ball.", "someone tosses a ball up and swings overhead."]
  np.testing.assert_allclose(ex["caption_start"], [0.0, 1.0])
  np.testing.assert_allclose(ex["caption_end"], [0.0, 5.5])
  positions, _ = common.decode(ex)
  raw = np.load(shared_data / "real/humanml3d/new_joints/012314.npy")
  assert positions.shape == (170, 1, 22, 3)
  np.testing.assert_array_equal(positions[:, 0], raw)
  (manual / "train.txt").write_text("999999\n")
  with pytest.raises(FileNotFoundError, match="999999"):
    _build(b.Builder, tmp_path / "dd2", manual)


def test_build_command_line_without_tensorflow(tmp_path):
  """`python -m data_prep.build` runs TFDS's own `build` command on a builder folder."""
  import subprocess
  import sys

  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  out = subprocess.run([sys.executable, "-m", "data_prep.build", "data_prep/synthetic_actions",
                        "--config=smoke", f"--data_dir={tmp_path}"], cwd=repo,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  ds = tfds.data_source("synthetic_actions/smoke", data_dir=os.fspath(tmp_path), split="test")
  assert len(ds) == 32
  labels = sorted(int(ds[i]["label"]) for i in range(len(ds)))
  assert labels == list(range(len(synthetic.CLASS_NAMES)))  # 32 clips cycle through 32 classes
