"""`kinetics_skeleton`: Kinetics-400 OpenPose-18 2D skeletons (ST-GCN release), 400 classes.

Build from the repository root (TensorFlow-free; with TensorFlow installed,
`PYTHONPATH=. tfds build` takes the same arguments):

    python -m data_prep.build data_prep/kinetics_skeleton --config=top2 \
        --manual_dir=/data/kinetics-skeleton --data_dir=~/tensorflow_datasets

Read:

    ds = tfds.data_source("kinetics_skeleton/top2", split="validation")
    positions, valid = data_prep.common.decode(ds[0])  # [T, 2, 18, 3] (z = 0), valid = score

Splits `train` / `validation` come from `kinetics_{train,val}_label.json`; a
split whose label file is absent is not built. Every clip file must have an
entry in its label file and agree with it; label entries without a clip file
(`has_skeleton` false, or not downloaded) are counted and logged.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow_datasets as tfds

from data_prep import common
from skel_llm.skeleton import SkeletonFormatError, files, load

MANUAL_DOWNLOAD_INSTRUCTIONS = """
Download `kinetics-skeleton` of the ST-GCN release (github yysijie/st-gcn, "Kinetics-skeleton"
on its data page) and unzip it as `manual_dir`: `kinetics_train/` and `kinetics_val/` with one
`<youtube id>.json` per clip, and the label files `kinetics_train_label.json` and
`kinetics_val_label.json`. Clips may also sit directly next to their label file.
"""
NUM_CLASSES = 400


@dataclasses.dataclass
class KineticsConfig(tfds.core.BuilderConfig):
  """Attributes: max_people, how many people (most confident per frame) a clip keeps."""

  max_people: int = 2
_SPLITS = {"train": "train", "validation": "val"}


def _clip_paths(root: str, tag: str) -> list[str]:
  folder = os.path.join(root, f"kinetics_{tag}")
  if not os.path.isdir(folder):
    folder = root
  label_file = f"kinetics_{tag}_label.json"
  return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                if n.endswith(".json") and n != label_file and not n.endswith("_label.json"))


class Builder(tfds.core.GeneratorBasedBuilder):
  """Kinetics-skeleton clips with their Kinetics-400 labels."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "ST-GCN JSON release, 2 most confident people per frame."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      KineticsConfig(name="top2", max_people=2,
                     description="The 2 most confident people per frame (as ST-GCN)."),
      KineticsConfig(name="top1", max_people=1, description="The most confident person only."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=common.skeleton_features(
            label=tfds.features.ClassLabel(num_classes=NUM_CLASSES),
            label_name=tfds.features.Text()),
        homepage="https://github.com/yysijie/st-gcn")

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    out = {}
    for split, tag in _SPLITS.items():
      label_path = os.path.join(root, f"kinetics_{tag}_label.json")
      if os.path.isfile(label_path):
        out[split] = self._generate_examples(label_path, _clip_paths(root, tag))
    if not out:
      raise FileNotFoundError(f"{root}: neither kinetics_train_label.json nor "
                              f"kinetics_val_label.json found. {MANUAL_DOWNLOAD_INSTRUCTIONS}")
    return out

  def _generate_examples(self, label_path: str, clips: list[str]):
    labels = files.read_json(label_path)  # errors name the file and line
    if not isinstance(labels, dict):
      raise SkeletonFormatError(label_path, "$", "expected a JSON object {clip id: {label, "
                                "label_index}}")
    for path in clips:
      clip = os.path.basename(path)[:-len(".json")]
      entry = labels.get(clip)
      if entry is None:
        raise ValueError(f"{path}: clip {clip!r} has no entry in {label_path}")
      if not isinstance(entry, dict):
        raise SkeletonFormatError(label_path, f"$.{clip}", f"expected an object {{label, "
                                  f"label_index}}, got {type(entry).__name__}")
      rec = load(path, format="kinetics", max_people=self.builder_config.max_people)
      index, name = entry.get("label_index"), entry.get("label")
      if (type(index) is not int or not 0 <= index < NUM_CLASSES  # noqa: E721 (bool is no label)
          or not isinstance(name, str)):
        raise ValueError(f"{label_path}: entry {clip!r}: expected label (str) and label_index in "
                         f"[0, {NUM_CLASSES}), got {entry}")
      md = rec.metadata
      if md.get("label", index) != index or md.get("label_name", name) != name:
        raise ValueError(f"{path}: label {md.get('label_name')!r} ({md.get('label')}) disagrees "
                         f"with {label_path}: {name!r} ({index})")
      yield clip, common.encode(rec, clip, label=index, label_name=name)
    common.log_skipped("kinetics_skeleton", f"entries of {os.path.basename(label_path)} without "
                       "a clip file", len(labels) - len(clips), len(labels))
