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


def test_synthetic_actions_qa(tmp_path, tfds_build, tfds_read):
  """The `qa` config: single-person classes, each clip's questions and captions as the
  generator gives them (fixed seeds), read back through the training data source."""
  import ml_collections

  from data_prep.synthetic_actions import synthetic_actions_dataset_builder as b
  from skel_llm.data import tfds_source
  from skel_llm.synthetic import captions, qa

  cfg = b.SyntheticConfig(name="tinyqa", num_train=2, num_test=len(qa.QA_LABELS) + 2,
                          num_frames=20, qa=True)
  tfds_build(b.Builder, tmp_path, config=cfg)
  test = tfds_read("synthetic_actions/tinyqa", tmp_path, "test")
  assert len(test) == len(qa.QA_LABELS) + 2
  for ex in test.values():
    label, seed = int(ex["label"]), int(ex["seed"])
    assert label in qa.QA_LABELS
    rec = synthetic.generate_clip(label, seed, num_frames=20)
    i = seed - b._SPLIT_SEEDS["test"]
    want = qa.questions(label, rec.metadata["description"], clip_of_class=i // len(qa.QA_LABELS),
                        seed=b._SPLIT_SEEDS["test"])
    assert qa.items_from_text(common.text(ex["qa"]), where="x") == want
    assert tuple(common.text(c) for c in ex["captions"]) == captions.captions(
        rec.metadata["description"])
  data_cfg = ml_collections.ConfigDict(dict(
      tfds_name="synthetic_actions/tinyqa", data_dir=str(tmp_path), train_split="train",
      eval_split="test", protocol="", topology="ntu25", placement="none"))
  source = tfds_source.TfdsSource.from_config(data_cfg, "eval")
  clip = source[0]
  assert clip.qa and clip.captions and all(isinstance(q, qa.QAItem) for q in clip.qa)
