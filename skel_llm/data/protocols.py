"""Registry of zero-shot (open-vocabulary) protocols, selectable by name from configs.

A protocol names a dataset, its unseen classes (0-based labels) and the
subject/view split the numbers are reported on. Train on the seen classes of
the training subjects, test on the unseen classes of the test subjects,
choosing among the unseen class names only.

Unseen lists are the published split files (SynSE: NTU-60 55/5, 48/12 and
NTU-120 110/10, 96/24; PURLS: 40/20, 30/30, 80/40, 60/60; PKU-MMD 46/5, 39/12;
SMIE's three random splits per dataset, whose results are averaged), as
collected in docs/method.md §5.

    from skel_llm.data import protocols
    p = protocols.get("ntu60_48_12")
    p.seen, p.unseen, p.unseen_names
"""

from __future__ import annotations

import dataclasses

from skel_llm import synthetic
from skel_llm.data import classnames

# NTU cross-subject training performers (NTU-60 list; NTU-120 adds 33 more), from the dataset papers.
NTU60_XSUB_TRAIN_SUBJECTS: tuple[int, ...] = (
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN_SUBJECTS: tuple[int, ...] = NTU60_XSUB_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
    89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
NTU60_XVIEW_TRAIN_CAMERAS: tuple[int, ...] = (2, 3)
# NTU-120 cross-setup: even setup ids train, odd ones test.
NTU120_XSET_TRAIN_SETUPS: tuple[int, ...] = tuple(range(2, 33, 2))


@dataclasses.dataclass(frozen=True)
class Protocol:
  """One zero-shot split.

  Attributes:
    name: registry key, e.g. 'ntu60_48_12'.
    dataset: key of `classnames.class_names` ('ntu60', 'ntu120', 'pku_mmd', 'synthetic').
    unseen: sorted 0-based labels held out of training.
    benchmark: subject/view split the results use ('xsub', 'xview', 'xset', or 'seed').
    source: where the split comes from.
    group: protocols whose results are averaged (SMIE's three random splits), else ''.
  """

  name: str
  dataset: str
  unseen: tuple[int, ...]
  benchmark: str
  source: str
  group: str = ""

  def __post_init__(self):
    n = self.num_classes
    if list(self.unseen) != sorted(set(self.unseen)) or not all(0 <= u < n for u in self.unseen):
      raise ValueError(f"protocol {self.name}: unseen labels must be sorted, distinct, in [0, {n})")

  @property
  def class_names(self) -> tuple[str, ...]:
    return classnames.class_names(self.dataset)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def seen(self) -> tuple[int, ...]:
    unseen = set(self.unseen)
    return tuple(i for i in range(self.num_classes) if i not in unseen)

  @property
  def seen_names(self) -> tuple[str, ...]:
    return tuple(self.class_names[i] for i in self.seen)

  @property
  def unseen_names(self) -> tuple[str, ...]:
    return tuple(self.class_names[i] for i in self.unseen)

  def with_names(self, names_key: str) -> Protocol:
    """The same split, naming the classes by another table of `classnames` (same length).

    e.g. `get("ntu60_48_12").with_names("ntu60_author_names").unseen_names`.
    """
    other = classnames.class_names(names_key)
    if len(other) != self.num_classes:
      raise ValueError(f"protocol {self.name}: {names_key!r} names {len(other)} classes, "
                       f"the split has {self.num_classes}")
    return dataclasses.replace(self, dataset=names_key)


_REGISTRY: dict[str, Protocol] = {}


def _add(name: str, dataset: str, unseen: str, benchmark: str, source: str, group: str = ""):
  _REGISTRY[name] = Protocol(name, dataset, tuple(int(u) for u in unseen.split()), benchmark,
                             source, group)


_SYNSE = "SynSE (Gupta et al., ICIP 2021) split files"
_PURLS = "PURLS (Zhu et al., CVPR 2024) split files"
_PKU = "published PKU-MMD zero-shot split files (docs/method.md §5)"
_add("ntu60_55_5", "ntu60", "10 11 19 26 56", "xsub", _SYNSE)
_add("ntu60_48_12", "ntu60", "3 5 9 12 15 40 42 47 51 56 58 59", "xsub", _SYNSE)
_add("ntu60_40_20", "ntu60",
     "0 12 13 14 15 16 17 22 23 26 29 30 31 35 36 42 43 48 56 57", "xsub", _PURLS)
_add("ntu60_30_30", "ntu60",
     "0 1 2 6 7 8 10 12 13 15 16 18 20 21 25 26 27 31 32 33 39 42 45 47 48 51 52 55 58 59",
     "xsub", _PURLS)
_add("ntu120_110_10", "ntu120", "4 13 37 43 49 65 88 95 99 106", "xsub", _SYNSE)
_add("ntu120_96_24", "ntu120",
     "5 9 11 16 18 20 22 29 35 39 45 49 59 68 70 81 84 87 93 94 104 113 114 119", "xsub", _SYNSE)
_add("ntu120_80_40", "ntu120",
     "11 12 18 22 23 26 28 34 37 38 42 44 46 47 48 57 59 64 66 70 73 74 75 83 86 90 92 93 95 96 "
     "102 104 107 108 110 112 115 116 118 119", "xsub", _PURLS)
_add("ntu120_60_60", "ntu120",
     "0 1 4 6 7 8 9 17 18 21 23 25 26 28 30 32 33 34 37 38 39 40 41 42 44 45 50 51 52 53 56 61 "
     "62 65 67 68 69 70 74 77 78 81 83 87 89 90 91 92 94 95 96 97 100 101 109 111 114 115 116 "
     "118", "xsub", _PURLS)
_add("pku_mmd_46_5", "pku_mmd", "1 9 20 34 50", "xsub", _PKU)
_add("pku_mmd_39_12", "pku_mmd", "3 7 11 15 19 21 25 31 33 36 43 48", "xsub", _PKU)

_SMIE = "SMIE (Zhou et al., ACM MM 2023) random splits; report the mean of the three"
for _i, _u in enumerate(("4 19 31 47 51", "12 29 32 44 59", "7 20 28 39 58"), start=1):
  _add(f"ntu60_smie_{_i}", "ntu60", _u, "xsub", _SMIE, group="ntu60_smie")
for _i, _u in enumerate(("3 18 26 38 41 60 87 99 102 110", "5 12 14 15 17 42 67 82 100 119",
                         "6 20 27 33 42 55 71 97 104 118"), start=1):
  _add(f"ntu120_smie_{_i}", "ntu120", _u, "xsub", _SMIE, group="ntu120_smie")
for _i, _u in enumerate(("1 9 20 34 50", "3 14 29 31 49", "2 15 39 41 43"), start=1):
  _add(f"pku_mmd_smie_{_i}", "pku_mmd", _u, "xsub", _SMIE, group="pku_mmd_smie")

# The embedded default: unseen verb/part combinations of the synthetic actions.
_add("synthetic_compositional", "synthetic",
     " ".join(str(u) for u in synthetic.compositional_split(0)[1]), "seed",
     "skel_llm.synthetic.compositional_split(seed=0)")


def names() -> list[str]:
  """Every registered protocol name."""
  return sorted(_REGISTRY)


def get(name: str) -> Protocol:
  """The protocol registered as `name`; KeyError lists the known names."""
  try:
    return _REGISTRY[name]
  except KeyError:
    raise KeyError(f"unknown zero-shot protocol {name!r}; known: {names()}") from None


def group(name: str) -> tuple[Protocol, ...]:
  """The protocols whose results are averaged together (e.g. 'ntu60_smie' -> its three splits)."""
  members = tuple(p for p in _REGISTRY.values() if p.group == name)
  if not members:
    groups = sorted({p.group for p in _REGISTRY.values() if p.group})
    raise KeyError(f"unknown protocol group {name!r}; known: {groups}")
  return members


def is_ntu_train_sample(benchmark: str, *, setup: int, camera: int, subject: int,
                        ntu120: bool) -> bool:
  """Whether an NTU sample (ids from its name SsssCcccPpppRrrrAaaa) is in the training half.

  Args:
    benchmark: 'xsub' (performers), 'xview' (cameras; NTU-60 only) or 'xset' (setups; NTU-120).
    setup, camera, subject: 1-based ids from the sample name.
    ntu120: use the NTU-120 subject list for 'xsub'.
  """
  if benchmark == "xsub":
    return subject in (NTU120_XSUB_TRAIN_SUBJECTS if ntu120 else NTU60_XSUB_TRAIN_SUBJECTS)
  if benchmark == "xview":
    return camera in NTU60_XVIEW_TRAIN_CAMERAS
  if benchmark == "xset":
    return setup in NTU120_XSET_TRAIN_SETUPS
  raise ValueError(f"NTU benchmark must be 'xsub', 'xview' or 'xset', got {benchmark!r}")
