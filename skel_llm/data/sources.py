"""Random-access clip sources for the pipeline: the synthetic generator and TFDS builds.

A source knows its class names, which classes its split offers as candidates
(seen classes for training, unseen ones for zero-shot evaluation, all of them
for the synthetic demo), and returns `Clip`s by index.
"""

from __future__ import annotations

import abc
import dataclasses
import threading
from typing import Any, Sequence

import numpy as np

KINDS = ("synthetic", "tfds")  # evaluators also read `skel_llm.data.crossformat` targets


@dataclasses.dataclass(frozen=True)
class Clip:
  """One skeleton sequence with its label (what a source yields)."""

  positions: np.ndarray  # float32[T, P, J, 3]
  label: int  # index into the source's class names
  rationale: str | None = None  # teacher / generator step-by-step text ending "Label: ..."
  key: str = ""
  captions: tuple[str, ...] | None = None  # reference captions (HumanML3D texts, generator)
  qa: tuple | None = None  # `skel_llm.synthetic.qa.QAItem`s about this clip
  topology: str = ""  # registry name; set by a mixed-format source (`MixedSource`)


def clip_from_record(record: Any, *, label: int = -1, key: str = "") -> Clip:
  """A `Clip` of a parsed `SkeletonRecord` (`skel_llm.skeleton.load`), with its captions.

  HumanML3D records carry `metadata['captions']` (None when no texts folder was found); the
  caption task raises for a clip without captions, naming it.
  """
  meta = dict(getattr(record, "metadata", None) or {})
  caps = meta.get("captions")
  if caps is not None:
    caps = tuple(c["caption"] if isinstance(c, dict) else str(c) for c in caps)
  name = key or str(getattr(record, "source", "") or meta.get("name", ""))
  return Clip(positions=np.asarray(record.positions, np.float32), label=int(label),
              rationale=meta.get("description"), key=name, captions=caps)


class ClipSource(abc.ABC):
  """Indexable clips of one split."""

  name: str
  class_names: list[str]
  candidate_ids: list[int]
  # Labels of two-person classes when the dataset defines them (NTU A50-A60, A106-A120; the
  # synthetic interactions), else None.
  two_person_labels: tuple[int, ...] | None = None

  @abc.abstractmethod
  def __len__(self) -> int:
    ...

  @abc.abstractmethod
  def __getitem__(self, index: int):
    ...

  def keys(self) -> list[str]:
    """`Clip.key` of every index (the join key of rationale files)."""
    return [self[i].key for i in range(len(self))]


class SyntheticSource(ClipSource):
  """Clips from `skel_llm.synthetic.generate_clip`, clip i = class `classes[i % C]`.

  Training and evaluation use disjoint generator seeds (`seed_offset`), so the
  evaluation clips are held out: same classes, never-seen bodies, speeds and
  timings. The generator's step-by-step description is the rationale. Clips of any
  `synthetic.formats` topology are written in that format's units and placed in front of the
  camera by `placement` (`skel_llm.render.camera.place`; 'auto' by the topology).
  """

  def __init__(self, *, num_clips: int, seed_offset: int, num_frames: int, topology: str,
               classes: Sequence[str] | None = None, name: str = "synthetic",
               knobs: dict | None = None, placement: str = "auto",
               classes_field: str = "config.data.classes"):
    from skel_llm import synthetic
    from skel_llm.render import camera
    if placement not in camera.RULES:
      raise ValueError(f"config.data.placement {placement!r}: use one of {list(camera.RULES)}")
    self._place = lambda p: camera.place(p, placement, topology)
    self._gen = synthetic.generate_clip
    all_names = list(synthetic.CLASS_NAMES)
    if classes:
      unknown = [c for c in classes if c not in all_names]
      if unknown:
        raise ValueError(f"{classes_field}: {unknown} are not synthetic classes; known: "
                         f"{all_names}")
    self.class_names = all_names
    self.two_person_labels = tuple(synthetic.TWO_PERSON_LABELS)
    self.candidate_ids = [all_names.index(c) for c in classes] if classes else list(
        range(len(all_names)))
    self.num_clips = int(num_clips)
    self.seed_offset = int(seed_offset)
    self.num_frames = int(num_frames)
    self.topology = topology
    self.name = name
    # Variation knobs for every clip: a number fixes a knob, a (low, high) pair narrows or
    # widens its range (see `synthetic.generator.KNOB_RANGES`).
    self.knobs = {k: tuple(v) if isinstance(v, (tuple, list)) else v
                  for k, v in (knobs or {}).items()}
    unknown = sorted(set(self.knobs) - set(synthetic.KNOB_RANGES))
    if unknown:
      raise ValueError(f"config.data.synthetic_knobs: unknown knob(s) {unknown}; known: "
                       f"{sorted(synthetic.KNOB_RANGES)}")
    self._cache: dict[int, Any] = {}
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return self.num_clips

  def keys(self) -> list[str]:
    return [f"{self.name}/{i}" for i in range(self.num_clips)]

  def __getitem__(self, index: int):
    if not 0 <= index < self.num_clips:
      raise IndexError(f"{self.name}: index {index} outside [0, {self.num_clips})")
    with self._lock:
      hit = self._cache.get(index)
    if hit is not None:
      return hit
    label = self.candidate_ids[index % len(self.candidate_ids)]
    rec = self._gen(self.class_names[label], self.seed_offset + index, num_frames=self.num_frames,
                    topology=self.topology, **self.knobs)
    meta = rec.metadata
    if int(meta.get("label_index", label)) != label:
      raise ValueError(f"synthetic clip {index}: asked for class {label}, generator labelled it "
                       f"{meta.get('label_index')}")
    from skel_llm.synthetic import captions, qa
    desc = meta.get("description")
    key = f"{self.name}/{index}"
    clip = Clip(positions=self._place(np.asarray(rec.positions, np.float32)), label=label,
                rationale=desc, key=key, captions=captions.captions(desc),
                qa=qa.questions(label, desc, clip_of_class=index // len(self.candidate_ids),
                                seed=self.seed_offset, where=key))
    with self._lock:
      self._cache[index] = clip
    return clip


def mixture(data_cfg: Any) -> tuple[tuple[str, ...], tuple[float, ...]] | None:
  """(topologies, normalised weights) of a mixed-format training set (`config.data.topologies`
  with `config.data.topology_weights`, empty: equal), or None for a single-topology one."""
  topos = tuple(data_cfg.get("topologies") or ())
  if not topos or topos == (data_cfg.get("topology"),):
    return None
  weights = tuple(float(w) for w in (data_cfg.get("topology_weights") or ()))
  if not weights:
    weights = (1.0,) * len(topos)
  if len(weights) != len(topos):
    raise ValueError(f"config.data.topology_weights {weights} has {len(weights)} entries, "
                     f"config.data.topologies {topos} has {len(topos)}: give one weight per "
                     f"topology (or none for equal weights)")
  if not all(np.isfinite(w) and w > 0 for w in weights):
    raise ValueError(f"config.data.topology_weights {weights}: every weight must be a positive, "
                     f"finite number")
  total = sum(weights)
  return topos, tuple(w / total for w in weights)


class MixedSource(ClipSource):
  """Clips of several topologies in one split (mixed-format training, issue 14).

  Clip i comes from the source of topology `assignment[i]`, drawn once with the mixture weights
  from `default_rng([seed, 7])`, so the split is a pure function of the config: it is the k-th
  clip of the split drawn from that source, clip `k mod len(source)` there (the synthetic
  sources hold `num_clips` each, so no clip repeats; a small TFDS build is cycled through).
  Every clip carries its `topology`. The sources must share class names and candidate classes
  (one label space).
  """

  def __init__(self, sources: Sequence[ClipSource], topologies: Sequence[str],
               weights: Sequence[float], *, seed: int, name: str, num_clips: int):
    if len(sources) != len(topologies) or len(topologies) != len(weights):
      raise ValueError("MixedSource: one source and one weight per topology")
    first = sources[0]
    for src, topo in zip(sources[1:], topologies[1:]):
      if list(src.class_names) != list(first.class_names) or list(src.candidate_ids) != list(
          first.candidate_ids):
        raise ValueError(f"config.data.topologies: the {topo} source's classes "
                         f"({src.name}) differ from the {topologies[0]} source's "
                         f"({first.name}); a mixed-format split needs one label space")
    for src, topo in zip(sources, topologies):
      if len(src) == 0:
        raise ValueError(f"config.data.topologies: the {topo} source {src.name} is empty")
    self.sources, self.topologies = list(sources), tuple(topologies)
    self.class_names, self.candidate_ids = first.class_names, first.candidate_ids
    self.two_person_labels = first.two_person_labels
    self.name = name
    self.topology = topologies[0]
    cum = np.cumsum(np.asarray(weights, np.float64))
    u = np.random.default_rng([int(seed), 7]).random(int(num_clips)) * cum[-1]
    self.assignment = np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
    # rank of clip i among the clips drawn from its source
    self._rank = np.zeros(len(self.assignment), np.int64)
    for t in range(len(self.sources)):
      hit = self.assignment == t
      self._rank[hit] = np.arange(int(hit.sum()))

  def __len__(self) -> int:
    return int(self.assignment.shape[0])

  def _where(self, index: int) -> tuple[int, int]:
    t = int(self.assignment[index])
    return t, int(self._rank[index]) % len(self.sources[t])

  def keys(self) -> list[str]:
    keys = [s.keys() for s in self.sources]
    return [keys[t][j] for t, j in map(self._where, range(len(self)))]

  def __getitem__(self, index: int):
    if not 0 <= index < len(self):
      raise IndexError(f"{self.name}: index {index} outside [0, {len(self)})")
    t, j = self._where(index)
    clip = self.sources[t][j]
    return dataclasses.replace(clip, topology=self.topologies[t])


def _mixed_source(data_cfg: Any, topos, weights) -> MixedSource:
  """The training split of `config.data.topologies`: one synthetic source per topology, or one
  TFDS build per topology (`config.data.tfds_names`, in the same order)."""
  import copy
  kind = data_cfg.source
  if kind == "synthetic":
    subs = [SyntheticSource(num_clips=data_cfg.num_train_clips, seed_offset=data_cfg.seed,
                            num_frames=data_cfg.clip_frames, topology=t,
                            classes=data_cfg.get("classes") or None, name=f"synthetic/train/{t}",
                            knobs=dict(data_cfg.get("synthetic_knobs") or {}),
                            placement=data_cfg.get("placement", "auto")) for t in topos]
    return MixedSource(subs, topos, weights, seed=data_cfg.seed, name="synthetic/train",
                       num_clips=data_cfg.num_train_clips)
  if kind == "tfds":
    names = tuple(data_cfg.get("tfds_names") or ())
    if len(names) != len(topos):
      raise ValueError(f"config.data.tfds_names {names} must name one TFDS build per topology "
                       f"of config.data.topologies {tuple(topos)} (same order)")
    from skel_llm.data import tfds_source
    subs = []
    for name, topo in zip(names, topos):
      cfg = copy.deepcopy(data_cfg)
      cfg.tfds_name, cfg.topology = name, topo
      subs.append(tfds_source.TfdsSource.from_config(cfg, "train"))
    # Without explicit weights the builds keep their sizes' proportions.
    if not tuple(data_cfg.get("topology_weights") or ()):
      weights = tuple(len(s) / sum(len(x) for x in subs) for s in subs)
    return MixedSource(subs, topos, weights, seed=data_cfg.seed, name="tfds/train",
                       num_clips=sum(len(s) for s in subs))
  raise ValueError(f"config.data.topologies {tuple(topos)} (mixed-format training) needs "
                   f"config.data.source 'synthetic' or 'tfds', got {kind!r}")


def make_source(data_cfg: Any, split: str) -> ClipSource:
  """The source of `split` ('train' or 'eval') described by `config.data`.

  With `config.data.rationale_file`, the training split keeps the clips that have a
  rationale there (`skel_llm.data.rationales.WithRationales`, which reports the others).
  """
  source = _make_source(data_cfg, split)
  path = data_cfg.get("rationale_file", "")
  if path and split == "train":
    from skel_llm.data import rationales
    source = rationales.WithRationales(source, rationales.read_rationales(path), path)
  return source


def _make_source(data_cfg: Any, split: str) -> ClipSource:
  if split not in ("train", "eval"):
    raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
  kind = data_cfg.source
  if data_cfg.get("crossformat") and split == "eval":
    from skel_llm.data import crossformat
    return crossformat.make_source(data_cfg)
  mix = mixture(data_cfg) if split == "train" else None
  if mix is not None:
    return _mixed_source(data_cfg, *mix)
  if kind == "synthetic":
    n = data_cfg.num_train_clips if split == "train" else data_cfg.num_eval_clips
    # Evaluation seeds start far beyond any training seed, so the clips are held out;
    # `eval_seed_offset=0` evaluates on the training clips themselves (a memorisation check).
    offset = data_cfg.seed if split == "train" else data_cfg.seed + int(
        data_cfg.get("eval_seed_offset", 10_000_000))
    classes, field = data_cfg.get("classes") or None, "config.data.classes"
    if split == "eval" and data_cfg.get("eval_classes"):
      # Zero-shot: unseen classes, the candidates are these only.
      classes, field = data_cfg.eval_classes, "config.data.eval_classes"
    return SyntheticSource(num_clips=n, seed_offset=offset, num_frames=data_cfg.clip_frames,
                           topology=data_cfg.topology, classes=classes,
                           name=f"synthetic/{split}",
                           knobs=dict(data_cfg.get("synthetic_knobs") or {}),
                           placement=data_cfg.get("placement", "auto"), classes_field=field)
  if kind == "tfds":
    from skel_llm.data import tfds_source
    return tfds_source.TfdsSource.from_config(data_cfg, split)
  raise ValueError(f"config.data.source {kind!r} is unknown; known: {KINDS}")
