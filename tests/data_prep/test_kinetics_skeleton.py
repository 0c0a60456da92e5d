"""`kinetics_skeleton` builds from the five real ST-GCN clips and the real validation label file."""

import numpy as np

from data_prep import common
from skel_llm.skeleton import load


def test_kinetics_skeleton_from_the_real_clips(tmp_path, shared_data, tfds_build, tfds_read):
  from data_prep.kinetics_skeleton import kinetics_skeleton_dataset_builder as b

  src = shared_data / "real/kinetics_skeleton"
  tfds_build(b.Builder, tmp_path, src, "top2")
  val = tfds_read("kinetics_skeleton/top2", tmp_path, "validation")
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
