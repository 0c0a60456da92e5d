"""`synthetic_actions`: procedural skeleton actions from `skel_llm.synthetic` (no download).

Build from the repository root (TensorFlow-free; with TensorFlow installed,
`PYTHONPATH=. tfds build` takes the same arguments):

    python -m data_prep.build data_prep/synthetic_actions --config=default \
        --data_dir=~/tensorflow_datasets

Read:

    ds = tfds.data_source("synthetic_actions/default", split="train")
    positions, valid = data_prep.common.decode(ds[0])

Configs: `default` (every class in every split), `compositional` (train and
test_seen hold the seen classes of `compositional_split(0)`, test_unseen the
held-out verb/part combinations), `smoke` (two training clips and one test
clip per class) and `qa`, Skeleton-QA (ours; docs/skeleton_qa.md): the single-person
classes, each clip with its questions (`qa`, JSON: type, template, question, options,
answer, tags) and reference captions (`captions`):

    python -m data_prep.build data_prep/synthetic_actions --config=qa --data_dir=...
    ds = tfds.data_source("synthetic_actions/qa", split="test")
    questions = skel_llm.synthetic.qa.items_from_text(ds[0]["qa"].decode(), where="test 0")

Clip i of a split is `generate_clip(label = labels[i % C], seed = split_seed + i)` and its
questions `qa.questions(label, description, clip_of_class = i // C, seed = split_seed)`, so a
build is reproducible.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from data_prep import common
from skel_llm import synthetic


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
  """Split sizes and clip length.

  Attributes:
    num_train: clips in 'train'.
    num_test: clips in each test split.
    num_frames: frames per clip.
    compositional: split classes by `synthetic.compositional_split(0)`.
    topology: skeleton format of the clips (`skel_llm.synthetic.formats.FORMATS`).
    qa: Skeleton-QA: only classes with questions (`skel_llm.synthetic.qa.QA_LABELS`), each
      clip with its questions and captions.
  """

  num_train: int = 16384
  num_test: int = 2048
  num_frames: int = 48
  compositional: bool = False
  topology: str = "ntu25"
  qa: bool = False


# Seeds of the splits are far apart so no clip appears in two splits.
_SPLIT_SEEDS = {"train": 0, "test": 10_000_000, "test_seen": 10_000_000, "test_unseen": 20_000_000}


class Builder(tfds.core.GeneratorBasedBuilder):
  """Synthetic skeleton actions with true step-by-step descriptions."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "36 classes, NTU-25 skeletons in Kinect camera metres."}
  BUILDER_CONFIGS = [
      SyntheticConfig(name="default", description="All classes in train and test."),
      SyntheticConfig(name="compositional", compositional=True,
                      description="Unseen verb/part combinations held out of train."),
      SyntheticConfig(name="smoke", num_train=2 * len(synthetic.CLASS_NAMES),
                      num_test=len(synthetic.CLASS_NAMES),
                      description="Two training clips and one test clip of every class."),
      SyntheticConfig(name="smoke_smpl22", topology="smpl22",
                      num_train=2 * len(synthetic.CLASS_NAMES),
                      num_test=len(synthetic.CLASS_NAMES),
                      description="`smoke` written as SMPL-22 (HumanML3D frame): with `smoke`, "
                                  "a mixed-format training set (config.data.tfds_names)."),
      SyntheticConfig(name="qa", qa=True, num_train=8192, num_test=1024,
                      description="Skeleton-QA (ours): questions and captions of every clip."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    extra = {}
    if self.builder_config.qa:
      extra = dict(qa=tfds.features.Text(), captions=tfds.features.Sequence(tfds.features.Text()))
    return self.dataset_info_from_configs(
        description=__doc__,
        features=common.skeleton_features(
            label=tfds.features.ClassLabel(names=synthetic.CLASS_NAMES),
            description=tfds.features.Text(),
            verb=tfds.features.Text(), side=tfds.features.Text(), part=tfds.features.Text(),
            seed=tfds.features.Scalar(dtype=np.int64), **extra),
        supervised_keys=None)

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    cfg = self.builder_config
    if cfg.compositional:
      seen, unseen = synthetic.compositional_split(0)
      return {"train": self._generate_examples("train", seen, cfg.num_train),
              "test_seen": self._generate_examples("test_seen", seen, cfg.num_test),
              "test_unseen": self._generate_examples("test_unseen", unseen, cfg.num_test)}
    every = tuple(range(len(synthetic.CLASS_NAMES)))
    if cfg.qa:
      from skel_llm.synthetic import qa
      every = qa.QA_LABELS
    return {"train": self._generate_examples("train", every, cfg.num_train),
            "test": self._generate_examples("test", every, cfg.num_test)}

  def _generate_examples(self, split: str, labels: tuple[int, ...], count: int):
    base = _SPLIT_SEEDS[split]
    for i in range(count):
      label, seed = labels[i % len(labels)], base + i
      cfg = self.builder_config
      rec = synthetic.generate_clip(label, seed, num_frames=cfg.num_frames, topology=cfg.topology)
      md = rec.metadata
      extra = {}
      if cfg.qa:
        from skel_llm.synthetic import captions, qa
        items = qa.questions(label, md["description"], clip_of_class=i // len(labels),
                             seed=base, where=f"{split}_{i}")
        extra = dict(qa=qa.items_to_text(items), captions=list(captions.captions(
            md["description"])))
      yield f"{split}_{i}", common.encode(
          rec, f"{split}_{i:07d}", label=label, description=md["description"], verb=md["verb"],
          side=md["side"], part=md["part"], seed=seed, **extra)
