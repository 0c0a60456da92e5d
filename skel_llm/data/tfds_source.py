"""Clips from the TFDS builds of `data_prep/` (array_record, read with `tfds.data_source`).

Examples follow the flat layout of `data_prep/common.py`: `positions float32[T*P*J*3]` with
`num_frames`, `num_persons`, `num_joints`, a `label` ClassLabel, a `name`, and (synthetic
builds) the generator's `description`. A zero-shot protocol (`config.data.protocol`, a name
in `skel_llm.data.protocols`) keeps the seen classes for training and the unseen ones for
evaluation, and offers only those as candidates. Rationales for stage 3 come from
`config.data.rationale_file` (joined in by `sources.make_source`), else the examples'
descriptions; a training clip without one raises when the reason task asks for it.
Positions are placed in front of the camera by `config.data.placement`
(`skel_llm.render.camera.place`; 'auto' picks the rule from the build's topology).

Start-up reads only what indexing needs: each example's `label` (and, for `keys()`, its
`name`) is taken from the serialized `tf.train.Example` without decoding the positions
(`scalar_fields`), so opening an NTU-120-sized split costs a proto parse per example, not a
decode of every clip.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skel_llm.data import sources
from skel_llm.render import camera


def _text(value: Any) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


_CHUNK = 4096  # records read per call of the underlying reader


def scalar_fields(data_source, names: tuple[str, ...]) -> dict[str, list]:
  """{name: [value of every example]} for scalar int / text features of a TFDS data source.

  An array_record source's raw records are parsed as `tf.train.Example` protos (TFDS' own
  proto module, no TensorFlow) and only the named features are read; the positions are
  never turned into arrays. Other sources fall back to decoding each example.
  """
  raw = getattr(data_source, "data_source", None)
  n = len(data_source)
  if raw is None or not hasattr(raw, "__getitems__"):
    examples = [data_source[i] for i in range(n)]
    return {k: [ex[k] for ex in examples] for k in names}
  from tensorflow_datasets.proto import tf_example_pb2
  out: dict[str, list] = {k: [] for k in names}
  for start in range(0, n, _CHUNK):
    for i, record in enumerate(raw.__getitems__(range(start, min(n, start + _CHUNK)))):
      feature = tf_example_pb2.Example.FromString(record).features.feature
      for k in names:
        if k not in feature:
          raise ValueError(f"{data_source}: example {start + i} has no feature {k!r}")
        f = feature[k]
        kind = f.WhichOneof("kind")
        values = getattr(f, kind).value if kind else ()
        if len(values) != 1 or kind == "float_list":
          raise ValueError(f"{data_source}: example {start + i} feature {k!r}: expected one "
                           f"int64 or bytes value, got {kind} of {len(values)}")
        out[k].append(values[0])
  return out


class TfdsSource(sources.ClipSource):
  """One split of a TFDS build, optionally restricted to a protocol's seen or unseen classes."""

  def __init__(self, data_source, *, class_names: list[str], keep_labels: list[int] | None,
               name: str, rationales: dict[str, str] | None = None, placement: str = "auto",
               topology: str = "ntu25"):
    if placement not in camera.RULES:
      raise ValueError(f"config.data.placement {placement!r}: use one of {list(camera.RULES)}")
    self._ds = data_source
    self.topology = topology
    self.name = name
    self.class_names = list(class_names)
    self._rationales = rationales
    self._placement = placement
    # Builds without a class label (HumanML3D: captions only) read every clip with label -1;
    # only the caption task can use them.
    info = getattr(data_source, "dataset_info", None)
    labelled = info is None or "label" in info.features
    labels = (np.asarray(scalar_fields(self._ds, ("label",))["label"], np.int64) if labelled
              else np.full(len(self._ds), -1, np.int64))
    if keep_labels is None:
      self._index = np.arange(len(labels))
      self.candidate_ids = sorted(set(labels.tolist()) - {-1})
    else:
      keep = np.isin(labels, keep_labels)
      self._index = np.nonzero(keep)[0]
      self.candidate_ids = sorted(keep_labels)
    if len(self._index) == 0:
      raise ValueError(f"{name}: no examples of the requested classes")

  @classmethod
  def from_config(cls, data_cfg, split: str) -> "TfdsSource":
    import tensorflow_datasets as tfds
    if not data_cfg.tfds_name:
      raise ValueError("config.data.tfds_name is empty; set it to a TFDS build such as "
                       "'ntu_rgbd/ntu60_xsub' or 'synthetic_actions/default'")
    tfds_split = data_cfg.train_split if split == "train" else data_cfg.eval_split
    try:
      ds = tfds.data_source(data_cfg.tfds_name, split=tfds_split,
                            data_dir=data_cfg.data_dir or None)
    except Exception as e:  # TFDS raises several types for a missing build or split
      raise ValueError(f"config.data: cannot open TFDS {data_cfg.tfds_name!r} split "
                       f"{tfds_split!r} in {data_cfg.data_dir or '~/tensorflow_datasets'}: {e}"
                       ) from e
    feats = ds.dataset_info.features
    names = list(feats["label"].names) if "label" in feats else []
    want = data_cfg.get("topology")
    held = want or "ntu25"
    if want and len(ds) and "format" in ds.dataset_info.features:
      held = _text(ds[0]["format"])
      if held != want:
        raise ValueError(f"config.data.topology is {want!r} but {data_cfg.tfds_name}/{tfds_split} "
                         f"holds {held!r} skeletons; set config.data.topology and "
                         f"config.render.topology to {held!r}")
    keep = None
    if data_cfg.protocol and not names:
      raise ValueError(f"config.data.protocol {data_cfg.protocol!r}: {data_cfg.tfds_name} has "
                       f"no class labels")
    if data_cfg.protocol:
      from skel_llm.data import protocols
      proto = protocols.get(data_cfg.protocol)
      if proto.num_classes != len(names):
        raise ValueError(f"config.data.protocol {data_cfg.protocol} has {proto.num_classes} "
                         f"classes but {data_cfg.tfds_name} has {len(names)}")
      names = list(proto.class_names)
      keep = list(proto.seen) if split == "train" else list(proto.unseen)
    # `config.data.rationale_file` is joined in by `sources.make_source` (data/rationales.py).
    source = cls(ds, class_names=names, keep_labels=keep, rationales=None,
                 name=f"{data_cfg.tfds_name}/{tfds_split}",
                 placement=data_cfg.get("placement", "auto"), topology=held)
    if data_cfg.tfds_name.startswith("ntu_rgbd/"):
      from skel_llm.data import classnames
      source.two_person_labels = tuple(i for i in classnames.NTU_TWO_PERSON_LABELS
                                       if i < len(names))
    return source

  def __len__(self) -> int:
    return len(self._index)

  def keys(self) -> list[str]:
    names = scalar_fields(self._ds, ("name",))["name"]
    return [f"{self.name}/{_text(names[int(i)])}" for i in self._index]

  def __getitem__(self, index: int):
    ex = self._ds[int(self._index[index])]
    shape = (int(ex["num_frames"]), int(ex["num_persons"]), int(ex["num_joints"]), 3)
    positions = np.asarray(ex["positions"], np.float32).reshape(shape)
    positions = camera.place(positions, self._placement, self.topology)
    key = _text(ex["name"])
    if self._rationales is not None:
      rationale = self._rationales.get(key)
    else:
      rationale = _text(ex["description"]) if "description" in ex else None
    caps = None
    if "captions" in ex:
      caps = tuple(_text(c) for c in ex["captions"])
    qa = None
    if "qa" in ex:
      from skel_llm.synthetic import qa as qa_lib
      qa = qa_lib.items_from_text(_text(ex["qa"]), where=f"{self.name}/{key}")
    return sources.Clip(positions=positions, label=int(ex["label"]) if "label" in ex else -1,
                        rationale=rationale, key=f"{self.name}/{key}", captions=caps, qa=qa)
