"""`synthetic_actions` builds without any download and matches the generator clip for clip."""

import numpy as np

from data_prep import common
from skel_llm import synthetic


def test_synthetic_actions_compositional(tmp_path, tfds_build, tfds_read):
  from data_prep.synthetic_actions import synthetic_actions_dataset_builder as b

  cfg = b.SyntheticConfig(name="tiny", num_train=6, num_test=3, num_frames=16, compositional=True,
                          topology="smpl22")
  tfds_build(b.Builder, tmp_path, config=cfg)
  seen, unseen = synthetic.compositional_split(0)
  train = tfds_read("synthetic_actions/tiny", tmp_path, "train")
  test_unseen = tfds_read("synthetic_actions/tiny", tmp_path, "test_unseen")
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
