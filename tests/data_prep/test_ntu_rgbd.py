"""`ntu_rgbd` builds from the real NTU samples in ../shared/data/real/ntu_skeleton (read in place)."""

import numpy as np
import pytest

from data_prep import common
from skel_llm.skeleton import load


def test_ntu_rgbd_from_the_real_samples(tmp_path, shared_data, tfds_build, tfds_read):
  from data_prep.ntu_rgbd import ntu_rgbd_dataset_builder as b

  src = shared_data / "real/ntu_skeleton"
  tfds_build(b.Builder, tmp_path, src, "ntu60_xsub")
  train = tfds_read("ntu_rgbd/ntu60_xsub", tmp_path, "train")
  test = tfds_read("ntu_rgbd/ntu60_xsub", tmp_path, "test")
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


def test_ntu_rgbd_skips_listed_samples_and_keeps_ntu60_apart(tmp_path, shared_data, tfds_build, tfds_read):
  from data_prep.ntu_rgbd import ntu_rgbd_dataset_builder as b

  manual = tmp_path / "manual"
  manual.mkdir()
  for f in (shared_data / "real/ntu_skeleton").glob("*.skeleton"):
    (manual / f.name).symlink_to(f)
  (manual / "NTU_RGBD120_samples_with_missing_skeletons.txt").write_text(
      "1 of the captured samples in the \"NTU RGB+D 120\" dataset have missing skeletons.\n\n"
      "S002C001P003R001A003\n")
  tfds_build(b.Builder, tmp_path / "dd", manual, "ntu120_xset")
  train = tfds_read("ntu_rgbd/ntu120_xset", tmp_path / "dd", "train")
  test = tfds_read("ntu_rgbd/ntu120_xset", tmp_path / "dd", "test")
  # Even setups train under cross-setup; the listed sample is gone.
  assert sorted(train) == ["S004C002P003R001A017"]
  assert len(test) == 5 and all(n.startswith(("S001", "S003")) for n in test)
  # The NTU-60 configs need their own list and say so.
  with pytest.raises(FileNotFoundError, match="NTU_RGBD_samples_with_missing_skeletons.txt"):
    tfds_build(b.Builder, tmp_path / "dd60", manual, "ntu60_xview")
