"""`ntu_rgbd`: NTU RGB+D 60 / 120 skeletons (Kinect v2, 25 joints) from the raw `.skeleton` files.

Build from the repository root (TensorFlow-free; with TensorFlow installed,
`PYTHONPATH=. tfds build` takes the same arguments):

    python -m data_prep.build data_prep/ntu_rgbd --config=ntu60_xsub \
        --manual_dir=/data/ntu_rgbd --data_dir=~/tensorflow_datasets

Read:

    ds = tfds.data_source("ntu_rgbd/ntu60_xsub", split="test")
    positions, valid = data_prep.common.decode(ds[0])  # [T, P, 25, 3] Kinect metres

Configs: `ntu60_xsub`, `ntu60_xview` (NTU-60: setups S001-S017, actions
A1-A60) and `ntu120_xsub`, `ntu120_xset` (all 32 setups, A1-A120). Splits
`train` / `test` follow the official benchmarks (`skel_llm.data.protocols`).
Actors are chosen by the standard NTU denoising of `skel_llm.skeleton.ntu`.
Samples on the official missing-skeleton list are skipped, counted and logged.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from data_prep import common
from skel_llm.data import classnames, protocols
from skel_llm.skeleton import load, ntu

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Request access at https://rose1.ntu.edu.sg/dataset/actionRecognition/ and download the
skeleton archives `nturgbd_skeletons_s001_to_s017.zip` (NTU-60) and, for NTU-120,
`nturgbd_skeletons_s018_to_s032.zip`. Unzip them anywhere under `manual_dir` (the
`.skeleton` files are found recursively) and put the official lists of samples with
missing skeletons from github.com/shahroudy/NTURGB-D next to them:
`NTU_RGBD_samples_with_missing_skeletons.txt` (NTU-60 configs) and
`NTU_RGBD120_samples_with_missing_skeletons.txt` (NTU-120 configs).
"""


@dataclasses.dataclass
class NtuConfig(tfds.core.BuilderConfig):
  """Attributes: num_classes (60 or 120); benchmark ('xsub', 'xview' or 'xset')."""

  num_classes: int = 60
  benchmark: str = "xsub"

  @property
  def missing_list(self) -> str:
    return ("NTU_RGBD_samples_with_missing_skeletons.txt" if self.num_classes == 60
            else "NTU_RGBD120_samples_with_missing_skeletons.txt")


class Builder(tfds.core.GeneratorBasedBuilder):
  """NTU RGB+D skeletons with the cross-subject / cross-view / cross-setup splits."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Raw .skeleton files, standard actor denoising, flat features."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      NtuConfig(name="ntu60_xsub", num_classes=60, benchmark="xsub",
                description="NTU-60 cross-subject."),
      NtuConfig(name="ntu60_xview", num_classes=60, benchmark="xview",
                description="NTU-60 cross-view (cameras 2, 3 train; 1 test)."),
      NtuConfig(name="ntu120_xsub", num_classes=120, benchmark="xsub",
                description="NTU-120 cross-subject."),
      NtuConfig(name="ntu120_xset", num_classes=120, benchmark="xset",
                description="NTU-120 cross-setup (even setups train)."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    names = classnames.NTU60_CLASSES if self.builder_config.num_classes == 60 \
        else classnames.NTU120_CLASSES
    ids = {k: tfds.features.Scalar(dtype=np.int32)
           for k in ("setup", "camera", "subject", "replication", "action")}
    return self.dataset_info_from_configs(
        description=__doc__,
        features=common.skeleton_features(label=tfds.features.ClassLabel(names=names), **ids),
        homepage="https://rose1.ntu.edu.sg/dataset/actionRecognition/")

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    root = dl_manager.manual_dir
    missing = ntu.read_missing_skeletons(common.find_one(root, cfg.missing_list,
                                                         MANUAL_DOWNLOAD_INSTRUCTIONS))
    paths = common.find_files(root, ".skeleton", "NTU .skeleton files",
                              MANUAL_DOWNLOAD_INSTRUCTIONS)
    ours = []
    for p in paths:
      ids = ntu.parse_name(p)
      if not ids:
        raise ValueError(f"{p}: file name is not an NTU sample name SsssCcccPpppRrrrAaaa")
      if cfg.num_classes == 60 and (ids["setup"] > 17 or ids["action"] > 60):
        continue  # NTU-120 extension sample
      ours.append((p, ids))
    common.log_skipped("ntu_rgbd", "NTU-120 extension samples", len(paths) - len(ours),
                       len(paths))
    kept = set(ntu.filter_missing([p for p, _ in ours], missing, list_name=cfg.missing_list))
    ours = [(p, ids) for p, ids in ours if p in kept]
    is_train = [protocols.is_ntu_train_sample(
        cfg.benchmark, setup=ids["setup"], camera=ids["camera"], subject=ids["subject"],
        ntu120=cfg.num_classes == 120) for _, ids in ours]
    train = [s for s, t in zip(ours, is_train) if t]
    test = [s for s, t in zip(ours, is_train) if not t]
    return common.non_empty_splits("ntu_rgbd", {"train": train, "test": test},
                                   self._generate_examples)

  def _generate_examples(self, samples):
    for path, ids in samples:
      rec = load(path, format="ntu")
      name = os.path.basename(path)[:-len(".skeleton")]
      yield name, common.encode(rec, name, label=ids["label"],
                                **{k: ids[k] for k in ("setup", "camera", "subject",
                                                       "replication", "action")})
