"""Feature layout shared by the skeleton builders, and helpers to find manual-download files.

Without TensorFlow, TFDS cannot store ragged nested sequences, so a clip is
stored flat with its shape:

| feature | type | content |
|---|---|---|
| positions | float32[T * P * J * 3] | joint positions, reshape to [T, P, J, 3] |
| valid | float32[T * P * J] | per-joint confidence / presence, reshape to [T, P, J] |
| num_frames, num_persons, num_joints | int32 | T, P, J |
| fps | float32 | frames per second |
| format | text | topology name in `skel_llm.skeleton.topology` ('ntu25', ...) |
| is_2d | bool | z carries no data |
| name | text | sample name (file stem, or stem + segment for PKU-MMD) |

Text features read back as bytes. `decode()` turns an example from
`tfds.data_source` back into arrays.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from skel_llm.skeleton import SkeletonRecord


def skeleton_features(**extra: Any) -> tfds.features.FeaturesDict:
  """The clip features above plus `extra` (label, metadata fields)."""
  return tfds.features.FeaturesDict({
      "positions": tfds.features.Tensor(shape=(None,), dtype=np.float32),
      "valid": tfds.features.Tensor(shape=(None,), dtype=np.float32),
      "num_frames": tfds.features.Scalar(dtype=np.int32),
      "num_persons": tfds.features.Scalar(dtype=np.int32),
      "num_joints": tfds.features.Scalar(dtype=np.int32),
      "fps": tfds.features.Scalar(dtype=np.float32),
      "format": tfds.features.Text(),
      "is_2d": tfds.features.Scalar(dtype=np.bool_),
      "name": tfds.features.Text(),
      **extra,
  })


def encode(record: SkeletonRecord, name: str, **extra: Any) -> dict[str, Any]:
  """The feature dict of one record (flattened arrays + shape fields) plus `extra`."""
  t, p, j, _ = record.positions.shape
  if t < 1:
    raise ValueError(f"{record.source or name}: a clip needs at least one frame")
  return {
      "positions": np.ascontiguousarray(record.positions, np.float32).reshape(-1),
      "valid": np.ascontiguousarray(record.valid, np.float32).reshape(-1),
      "num_frames": t, "num_persons": p, "num_joints": j, "fps": float(record.fps),
      "format": record.format, "is_2d": bool(record.is_2d), "name": name, **extra,
  }


def decode(example: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
  """(positions float32[T, P, J, 3], valid float32[T, P, J]) of an example read back."""
  shape = (int(example["num_frames"]), int(example["num_persons"]), int(example["num_joints"]))
  positions = np.asarray(example["positions"], np.float32).reshape(shape + (3,))
  valid = np.asarray(example["valid"], np.float32).reshape(shape)
  return positions, valid


def text(value: Any) -> str:
  """A Text feature read back (bytes) as str."""
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def find_files(root: os.PathLike | str, suffix: str, what: str, instructions: str) -> list[str]:
  """Sorted paths under `root` (recursively) ending in `suffix`; raises when there are none."""
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{root}: manual-download folder does not exist. {instructions}")
  found = []
  for dirpath, _, names in os.walk(root, followlinks=True):
    found += [os.path.join(dirpath, n) for n in names if n.endswith(suffix)]
  if not found:
    raise FileNotFoundError(f"{root}: no {what} (*{suffix}) found. {instructions}")
  return sorted(found)


def find_one(root: os.PathLike | str, filename: str, instructions: str) -> str:
  """The single file called `filename` under `root`; raises when missing or ambiguous."""
  root = os.fspath(root)
  hits = []
  for dirpath, _, names in os.walk(root, followlinks=True):
    if filename in names:
      hits.append(os.path.join(dirpath, filename))
  if len(hits) != 1:
    found = "not found" if not hits else f"found {len(hits)} times: {sorted(hits)}"
    raise FileNotFoundError(f"{root}: {filename} {found}. {instructions}")
  return hits[0]


def non_empty_splits(dataset: str, splits: dict[str, list], make) -> dict[str, Any]:
  """{split: make(items)} for the splits that have items; TFDS cannot write an empty split.

  Splits without items (e.g. a partial download) are logged and not built.
  """
  empty = sorted(k for k, v in splits.items() if not v)
  if empty:
    logging.getLogger(f"data_prep.{dataset}").warning("%s: no samples for split(s) %s; not built",
                                                      dataset, empty)
  if len(empty) == len(splits):
    raise FileNotFoundError(f"{dataset}: no samples for any split")
  return {k: make(v) for k, v in splits.items() if v}


def log_skipped(dataset: str, reason: str, skipped: int, total: int) -> None:
  logging.getLogger(f"data_prep.{dataset}").info("%s: skipped %d of %d (%s)", dataset, skipped,
                                                 total, reason)
