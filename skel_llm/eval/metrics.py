"""Scoring rules and the summaries every recognition evaluator reports.

Two rules read a generated reply, reported side by side:
- `authors_hit`: the authors' rule (greedy decoding, a hit when the lower-cased true name is a
  substring of the lower-cased reply; the paper's numbers use it). A reply naming several
  labels ("drink water or eat meal") counts as a hit for each of them.
- `strict_prediction`: ours: the reply's last `Label:` line (the whole reply when it has none)
  must BE one candidate name after normalisation (`skel_llm.text.answers.normalise`: case,
  spaces, quotes, trailing punctuation); anything else, such as two names or a name with
  extra words, predicts nothing. A reply without a `Label:` line is also counted apart
  (`unlabelled`), so a budget that cuts replies short is visible instead of looking like a
  wrong answer.

`Summary` turns predictions into accuracy, per-class accuracy, the 1-person / 2-person
breakdown and a confusion matrix (rows truth, columns prediction, plus "unparsed").
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from skel_llm.text import answers

UNPARSED = "unparsed"


def authors_hit(reply: str, true_name: str) -> bool:
  """The true class name is a substring of the reply, both lower-cased."""
  return true_name.lower() in reply.lower()


def strict_prediction(reply: str, candidates: Sequence[str]) -> int | None:
  """Index into `candidates` of the one class the reply's label is, or None."""
  said = answers.parse_label(reply)
  if said is None:
    said = answers.normalise(reply.split("<|im_end|>")[0])
  for i, name in enumerate(candidates):
    if answers.normalise(name) == said:
      return i
  return None


def has_label_line(reply: str) -> bool:
  return answers.parse_label(reply) is not None


@dataclasses.dataclass
class Summary:
  """Accumulates (truth, prediction) pairs over candidate indices.

  Attributes:
    candidates: the candidate class names, in the order predictions index them.
    two_person: candidate indices of two-person classes, or None when the dataset does not
      define them (the breakdown then uses each clip's own person count).
  """

  candidates: list[str]
  two_person: set[int] | None = None

  def __post_init__(self):
    c = len(self.candidates)
    if c == 0:
      raise ValueError("a recognition summary needs at least one candidate class")
    self.confusion = np.zeros((c, c + 1), np.int64)  # last column: unparsed
    self._persons: list[int] = []
    self._truths: list[int] = []
    self._hits: list[bool] = []

  def add(self, truth: int, pred: int | None, *, persons: int = 1, hit: bool | None = None):
    """One clip: `truth` / `pred` index `candidates`; `hit` overrides pred == truth."""
    self.confusion[truth, len(self.candidates) if pred is None else pred] += 1
    self._truths.append(int(truth))
    self._persons.append(int(persons))
    self._hits.append(bool(pred == truth) if hit is None else bool(hit))

  @property
  def count(self) -> int:
    return len(self._truths)

  def accuracy(self) -> float:
    return float(np.mean(self._hits)) if self._hits else float("nan")

  def per_class(self) -> dict[str, float]:
    out = {}
    hits, truths = np.asarray(self._hits), np.asarray(self._truths)
    for i, name in enumerate(self.candidates):
      sel = truths == i
      if sel.any():
        out[name] = float(hits[sel].mean())
    return out

  def by_persons(self) -> dict[str, float]:
    """Accuracy over 1-person and over 2-person clips (a key is absent with no such clip)."""
    hits, truths = np.asarray(self._hits), np.asarray(self._truths)
    if self.two_person is not None:
      two = np.isin(truths, sorted(self.two_person))
    else:
      two = np.asarray(self._persons) >= 2
    out = {}
    for key, sel in (("1p", ~two), ("2p", two)):
      if sel.any():
        out[key] = float(hits[sel].mean())
    return out

  def confusion_json(self) -> dict:
    return {"rows": list(self.candidates), "columns": list(self.candidates) + [UNPARSED],
            "counts": self.confusion.tolist()}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and population standard deviation (numpy's default, ddof 0)."""
  v = np.asarray(values, np.float64)
  if v.size == 0:
    return math.nan, math.nan
  return float(v.mean()), float(v.std())


def topk_hits(scores: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
  """bool[B]: the true candidate is among the k highest scores (ties broken by index)."""
  order = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
  return np.any(order == truth[:, None], axis=-1)
