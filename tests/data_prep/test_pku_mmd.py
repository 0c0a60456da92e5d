"""`pku_mmd` builds from the real PKU-MMD sequence (symlinked) with label and split lists the test writes."""

import numpy as np
import pytest

from data_prep import common
from skel_llm.data import classnames
from skel_llm.skeleton import SkeletonFormatError, load


def _pku_manual(tmp_path, shared_data, split_text):
  manual = tmp_path / "manual"
  (manual / "PKU_Skeleton_Renew").mkdir(parents=True)
  (manual / "Train_Label_PKU_final").mkdir()
  (manual / "PKU_Skeleton_Renew/A10N08-L.txt").symlink_to(shared_data / "real/pku_mmd/A10N08-L.txt")
  (manual / "Train_Label_PKU_final/A10N08-L.txt").write_text(
      "1,10,70,1\n14,100,180,2\n51,900,1040,1\n")
  (manual / "cross-subject.txt").write_text(split_text)
  return manual


def test_pku_mmd_segments_from_the_real_sequence(tmp_path, shared_data, tfds_build, tfds_read):
  from data_prep.pku_mmd import pku_mmd_dataset_builder as b

  manual = _pku_manual(tmp_path, shared_data,
                       "Training videos: \nA10N08-L, 0002-M\nValidataion videos: \n0291-L\n")
  builder = tfds_build(b.Builder, tmp_path / "dd", manual, "xsub")
  train = tfds_read("pku_mmd/xsub", tmp_path / "dd", "train")
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


def test_pku_mmd_rejects_bad_split_lists(tmp_path, shared_data, tfds_build, tfds_read):
  from data_prep.pku_mmd import pku_mmd_dataset_builder as b

  manual = _pku_manual(tmp_path, shared_data, "A10N08-L\nTraining videos:\n0002-M\n")
  with pytest.raises(SkeletonFormatError, match="line 1: expected a 'Training videos:' header"):
    tfds_build(b.Builder, tmp_path / "dd", manual, "xsub")
  (manual / "cross-subject.txt").write_text("Training videos:\n0002-M\nValidation videos:\n0003-L")
  with pytest.raises(ValueError, match="A10N08-L is in neither list"):
    tfds_build(b.Builder, tmp_path / "dd2", manual, "xsub")
