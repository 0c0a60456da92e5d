"""`humanml3d`: HumanML3D motions (SMPL-22 joint positions, 20 fps) with their captions.

Build from the repository root (TensorFlow-free; with TensorFlow installed,
`PYTHONPATH=. tfds build` takes the same arguments):

    python -m data_prep.build data_prep/humanml3d --manual_dir=/data/HumanML3D \
        --data_dir=~/tensorflow_datasets

Read:

    ds = tfds.data_source("humanml3d", split="test")
    positions, valid = data_prep.common.decode(ds[0])  # [T, 1, 22, 3], y up, metres
    captions = [c.decode() for c in ds[0]["captions"]]

Splits are the dataset's `train.txt`, `val.txt` and `test.txt` id lists (a
missing list file means that split is not built). Every listed id must have
`new_joints/<id>.npy` and `texts/<id>.txt`; caption start/end are in seconds
(0 = whole clip).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from data_prep import common
from skel_llm.skeleton import load

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Build HumanML3D following github.com/EricGuo5513/HumanML3D (it needs AMASS, which must be
requested separately) and point `manual_dir` at the resulting `HumanML3D/` folder holding
`new_joints/`, `texts/` (unzipped texts.zip) and `train.txt`, `val.txt`, `test.txt`.
"""
_SPLITS = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}


def read_ids(path: str) -> list[str]:
  """Motion ids of a split list, one per line; blank lines are ignored."""
  try:
    with open(path, encoding="utf-8") as f:
      ids = [line.strip() for line in f if line.strip()]
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: expected UTF-8 text ({e.reason} at byte {e.start})") from None
  if not ids:
    raise ValueError(f"{path}: empty split list, expected one motion id per line")
  if len(set(ids)) != len(ids):
    raise ValueError(f"{path}: motion ids repeat")
  return ids


class Builder(tfds.core.GeneratorBasedBuilder):
  """HumanML3D joint positions with captions."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "new_joints positions + texts captions, flat features."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=common.skeleton_features(
            captions=tfds.features.Sequence(tfds.features.Text()),
            caption_start=tfds.features.Sequence(np.float32),
            caption_end=tfds.features.Sequence(np.float32)),
        homepage="https://github.com/EricGuo5513/HumanML3D")

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    out = {split: self._generate_examples(root, read_ids(os.path.join(root, f)),
                                          os.path.join(root, f))
           for split, f in _SPLITS.items() if os.path.isfile(os.path.join(root, f))}
    if not out:
      raise FileNotFoundError(f"{root}: no train.txt, val.txt or test.txt. "
                              f"{MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return out

  def _generate_examples(self, root: str, ids: list[str], list_path: str):
    texts = os.path.join(root, "texts")
    for motion in ids:
      path = os.path.join(root, "new_joints", f"{motion}.npy")
      if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: motion {motion} listed in {list_path} has no joint "
                                f"file. {MANUAL_DOWNLOAD_INSTRUCTIONS}")
      rec = load(path, format="humanml3d", texts_dir=texts)
      caps = rec.metadata["captions"]
      yield motion, common.encode(
          rec, motion, captions=[c["caption"] for c in caps],
          caption_start=np.array([c["start"] for c in caps], np.float32),
          caption_end=np.array([c["end"] for c in caps], np.float32))
