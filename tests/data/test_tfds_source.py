"""Pins skel_llm/data/tfds_source.py on a real (tiny) TFDS build of data_prep/synthetic_actions."""

import os

import ml_collections
import numpy as np
import pytest

from skel_llm import synthetic
from skel_llm.data import sources


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  import tensorflow_datasets as tfds

  from data_prep.synthetic_actions import synthetic_actions_dataset_builder as b
  d = tmp_path_factory.mktemp("tfds")
  b.Builder(config="smoke", data_dir=os.fspath(d), file_format="array_record"
            ).download_and_prepare()
  del tfds
  return d


def _cfg(d, **kw):
  c = ml_collections.ConfigDict(dict(
      source="tfds", tfds_name="synthetic_actions/smoke", data_dir=os.fspath(d),
      train_split="train", eval_split="test", protocol="", rationale_file="",
      placement="kinect"))
  c.update(kw)
  return c


def test_clips_match_the_generator(data_dir):
  src = sources.make_source(_cfg(data_dir), "train")
  n = len(synthetic.CLASS_NAMES)
  assert len(src) == 2 * n and src.class_names == list(synthetic.CLASS_NAMES)
  assert src.candidate_ids == list(range(n))
  for i in (0, 5, n + 3):
    clip = src[i]
    label = int(clip.key.split("_")[-1]) % n
    rec = synthetic.generate_clip(label, int(clip.key.split("_")[-1]), num_frames=48)
    assert clip.label == label
    np.testing.assert_array_equal(clip.positions, rec.positions)  # Kinect depth: no shift
    assert clip.rationale == rec.metadata["description"]


def test_protocol_keeps_seen_for_training_and_unseen_for_evaluation(data_dir, tmp_path):
  from skel_llm.data import protocols
  names = [p for p in protocols.names() if protocols.get(p).dataset == "synthetic"]
  assert names == ["synthetic_compositional"]
  proto = protocols.get(names[0])
  train = sources.make_source(_cfg(data_dir, protocol=names[0]), "train")
  test = sources.make_source(_cfg(data_dir, protocol=names[0]), "eval")
  assert train.candidate_ids == sorted(proto.seen) and test.candidate_ids == sorted(proto.unseen)
  assert {train[i].label for i in range(len(train))} <= set(proto.seen)
  assert {test[i].label for i in range(len(test))} == set(proto.unseen)
  # Teacher rationales from a file replace the built-in descriptions.
  path = tmp_path / "rationales.json"
  key = train[0].key.split("/")[-1]
  path.write_text('{"%s": "1. Teacher text.\\nLabel: x"}' % key)
  src = sources.make_source(_cfg(data_dir, protocol=names[0], rationale_file=str(path)), "train")
  # Only the clips the file explains are trained on; the others are counted and reported.
  assert len(src) == 1 and src[0].rationale == "1. Teacher text.\nLabel: x"
  assert src[0].key == train[0].key and len(src.missing) == len(train) - 1


def test_missing_build_is_named(tmp_path):
  with pytest.raises(ValueError, match="cannot open TFDS 'synthetic_actions/smoke'"):
    sources.make_source(_cfg(tmp_path), "train")


def test_unknown_split_is_named(data_dir):
  with pytest.raises(ValueError, match="cannot open TFDS 'synthetic_actions/smoke' split 'bogus'"):
    sources.make_source(_cfg(data_dir, train_split="bogus"), "train")


def test_skeleton_format_must_match_the_build(data_dir):
  assert len(sources.make_source(_cfg(data_dir, topology="ntu25"), "eval")) > 0
  with pytest.raises(ValueError, match="config.data.topology is 'coco17' but synthetic_actions/"
                                       "smoke/train holds 'ntu25' skeletons"):
    sources.make_source(_cfg(data_dir, topology="coco17"), "train")


def test_labels_and_names_are_read_without_decoding_the_clips(data_dir):
  """`scalar_fields` parses the raw array_record protos; TFDS' own decoder is the reference."""
  import tensorflow_datasets as tfds

  from skel_llm.data import tfds_source
  ds = tfds.data_source("synthetic_actions/smoke", split="train", data_dir=os.fspath(data_dir))
  assert hasattr(ds.data_source, "__getitems__")  # the raw-record path, not the fallback
  got = tfds_source.scalar_fields(ds, ("label", "name", "seed"))
  decoded = [ds[i] for i in range(len(ds))]
  assert got["label"] == [int(ex["label"]) for ex in decoded]
  assert got["name"] == [ex["name"] for ex in decoded]
  assert got["seed"] == [int(ex["seed"]) for ex in decoded]
  with pytest.raises(ValueError, match="feature 'positions': expected one int64 or bytes"):
    tfds_source.scalar_fields(ds, ("positions",))


def test_mixed_format_training_split_from_two_builds(data_dir):
  """`config.data.topologies` with one TFDS build per topology (`tfds_names`): the split is
  both builds' clips (weights = their sizes), each clip as its build holds it, with its
  topology; the pipeline pads smpl22 rows to 25 joints and tags them."""
  from data_prep.synthetic_actions import synthetic_actions_dataset_builder as b
  from skel_llm.data import pipeline
  b.Builder(config="smoke_smpl22", data_dir=os.fspath(data_dir), file_format="array_record"
            ).download_and_prepare()
  names = ("synthetic_actions/smoke", "synthetic_actions/smoke_smpl22")
  cfg = _cfg(data_dir, placement="auto", topology="ntu25", topologies=("ntu25", "smpl22"),
             topology_weights=(), tfds_names=names, seed=0)
  src = sources.make_source(cfg, "train")
  n = 2 * len(synthetic.CLASS_NAMES)
  assert isinstance(src, sources.MixedSource) and len(src) == 2 * n
  alone = {t: sources.make_source(_cfg(data_dir, placement="auto", topology=t, tfds_name=nm),
                                  "train") for t, nm in zip(("ntu25", "smpl22"), names)}
  seen = {"ntu25": set(), "smpl22": set()}
  for i in range(len(src)):
    clip = src[i]
    ref = alone[clip.topology][int(src._where(i)[1])]
    assert clip.key == ref.key and clip.label == ref.label
    np.testing.assert_array_equal(clip.positions, ref.positions)
    seen[clip.topology].add(clip.key)
  assert 0.3 < len(seen["smpl22"]) / n and 0.3 < len(seen["ntu25"]) / n
  from skel_llm.train import build, defaults
  c = defaults.load_config("configs/distill.py", "smoke")
  enc = build.encoder(c, build.tokenizer(c))
  pipe = pipeline.Pipeline(src, pipeline.ConversationBuilder("mqa", src.class_names,
                                                             src.candidate_ids, 4),
                           enc, global_batch=8, max_frames=48, max_persons=2, seed=0,
                           topologies=src.topologies)
  batch = pipe.batch(0)
  assert batch["positions"].shape[-2] == 25 and set(batch["topology"].tolist()) == {0, 1}
  for r in range(8):
    clip = src[pipe._index(r)]
    assert batch["topology"][r] == ("ntu25", "smpl22").index(clip.topology)
    j = clip.positions.shape[-2]
    np.testing.assert_array_equal(batch["positions"][r, :clip.positions.shape[0],
                                                     :clip.positions.shape[1], :j],
                                  clip.positions)
    assert np.all(batch["positions"][r, ..., j:, :] == 0)
