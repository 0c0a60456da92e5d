"""`pku_mmd`: PKU-MMD (phase 1) action segments, Kinect v2 25 joints, 51 classes.

Build from the repository root (TensorFlow-free; with TensorFlow installed,
`PYTHONPATH=. tfds build` takes the same arguments):

    python -m data_prep.build data_prep/pku_mmd --config=xsub \
        --manual_dir=/data/pku_mmd --data_dir=~/tensorflow_datasets

Read:

    ds = tfds.data_source("pku_mmd/xsub", split="test")
    positions, valid = data_prep.common.decode(ds[0])  # [T, 2, 25, 3] Kinect metres

Each example is one labelled segment `[start, end)` of a long sequence (the
label files' 1-based action ids become 0-based labels, names in
`skel_llm.data.classnames.PKU_MMD_CLASSES`). Splits follow the dataset's own
`cross-subject.txt` / `cross-view.txt` lists: their training videos go to
`train`, their validation videos to `test`.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from data_prep import common
from skel_llm.data import classnames
from skel_llm.skeleton import SkeletonFormatError, load_all

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Download PKU-MMD phase 1 from https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html and
unzip under `manual_dir`: the skeleton folder `PKU_Skeleton_Renew/` (one `<video>.txt` per
sequence, 150 numbers per line), the label folder `Train_Label_PKU_final/` (same file names,
lines `label,start,end,confidence`) and the split lists `cross-subject.txt` and
`cross-view.txt` (anywhere under `manual_dir`).
"""


@dataclasses.dataclass
class PkuConfig(tfds.core.BuilderConfig):
  """Attributes: split_file; skeleton_dir and label_dir (folder names under manual_dir)."""

  split_file: str = "cross-subject.txt"
  skeleton_dir: str = "PKU_Skeleton_Renew"
  label_dir: str = "Train_Label_PKU_final"


def read_split(path: str) -> tuple[set[str], set[str]]:
  """(training videos, validation videos) of a PKU-MMD split list.

  The list has a header line starting with 'Training' and one starting with
  'Validation' (also spelled 'Validataion' in the release), each followed by
  comma-separated video names such as `0002-L`.
  """
  sections: dict[str, set[str]] = {"train": set(), "test": set()}
  current = None
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise SkeletonFormatError(path, None, f"expected UTF-8 text ({e.reason} at byte "
                              f"{e.start})") from None
  for k, line in enumerate(text.splitlines(), start=1):
    s = line.strip()
    if not s:
      continue
    head = s.lower()
    if head.startswith("train"):
      current = "train"
      s = s.split(":", 1)[1] if ":" in s else ""
    elif head.startswith("valid") or head.startswith("test"):
      current = "test"
      s = s.split(":", 1)[1] if ":" in s else ""
    names = [n for n in re.split(r"[,\s]+", s) if n]
    if names and current is None:
      raise SkeletonFormatError(path, k, "expected a 'Training videos:' header before names")
    for n in names:
      if not re.fullmatch(r"[A-Za-z0-9]+-[LMR]", n):
        raise SkeletonFormatError(path, k, f"expected a video name like 0002-L, got {n!r}")
    if current is not None:
      sections[current].update(names)
  if not sections["train"] or not sections["test"]:
    raise SkeletonFormatError(path, None, "expected both a training and a validation video list")
  both = sections["train"] & sections["test"]
  if both:
    raise SkeletonFormatError(path, None, f"videos in both lists: {sorted(both)[:5]}")
  return sections["train"], sections["test"]


def _find_dir(root: str, name: str) -> str:
  for dirpath, dirnames, _ in os.walk(root, followlinks=True):
    if name in dirnames:
      return os.path.join(dirpath, name)
  raise FileNotFoundError(f"{root}: folder {name}/ not found. {MANUAL_DOWNLOAD_INSTRUCTIONS}")


class Builder(tfds.core.GeneratorBasedBuilder):
  """PKU-MMD labelled action segments with the cross-subject / cross-view splits."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "One example per labelled segment, flat features."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      PkuConfig(name="xsub", split_file="cross-subject.txt", description="Cross-subject."),
      PkuConfig(name="xview", split_file="cross-view.txt", description="Cross-view."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=common.skeleton_features(
            label=tfds.features.ClassLabel(names=classnames.PKU_MMD_CLASSES),
            video=tfds.features.Text(),
            start=tfds.features.Scalar(dtype=np.int32), end=tfds.features.Scalar(dtype=np.int32),
            confidence=tfds.features.Scalar(dtype=np.float32)),
        homepage="https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html")

  def _split_generators(self, dl_manager):
    cfg = self.builder_config
    root = os.fspath(dl_manager.manual_dir)
    train, test = read_split(common.find_one(root, cfg.split_file, MANUAL_DOWNLOAD_INSTRUCTIONS))
    skel_dir, label_dir = _find_dir(root, cfg.skeleton_dir), _find_dir(root, cfg.label_dir)
    videos = {}
    for path in common.find_files(skel_dir, ".txt", "PKU-MMD skeleton files",
                                  MANUAL_DOWNLOAD_INSTRUCTIONS):
      video = os.path.basename(path)[:-4]
      if video not in train and video not in test:
        raise ValueError(f"{path}: video {video} is in neither list of {cfg.split_file}")
      label = os.path.join(label_dir, os.path.basename(path))
      if not os.path.isfile(label):
        raise FileNotFoundError(f"{path}: no label file {label}")
      videos[video] = (path, label)
    listed = train | test
    common.log_skipped("pku_mmd", f"videos in {cfg.split_file} without a skeleton file",
                       len(listed - set(videos)), len(listed))
    return common.non_empty_splits(
        "pku_mmd", {"train": [videos[v] for v in sorted(train) if v in videos],
                    "test": [videos[v] for v in sorted(test) if v in videos]},
        self._generate_examples)

  def _generate_examples(self, pairs):
    for skel, label in pairs:
      video = os.path.basename(skel)[:-4]
      for k, rec in enumerate(load_all(skel, format="pku_mmd", label_path=label)):
        md = rec.metadata
        name = f"{video}_{k:03d}"
        yield name, common.encode(rec, name, label=md["label"], video=video, start=md["start"],
                                  end=md["end"], confidence=md["confidence"])
