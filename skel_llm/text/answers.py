"""Reading a model's reply: the `Label:` line, YES/NO, and matching to candidates.

A hit follows the authors' rule (docs/method.md §5): the true name
appearing in the reply. We read the last `Label:` line when there is one (a
rationale mentions other actions on the way), else the whole reply, and pick
the candidate it names: an exact match after normalisation first, then the
longest candidate contained in it (so 'put on a shoe' is not read as 'put on').
"""

from __future__ import annotations

import re
from typing import Sequence

_LABEL_RE = re.compile(r"label\s*:\s*(.+)", re.IGNORECASE)
_IM_END = "<|im_end|>"


def normalise(name: str) -> str:
  """Lower case, single spaces, no surrounding quotes or trailing punctuation."""
  name = name.replace(_IM_END, " ").strip().lower()
  name = re.sub(r"\s+", " ", name)
  return name.strip(" \t'\"`.,;:!")


def parse_label(text: str) -> str | None:
  """The normalised text after the last 'Label:' in `text`, or None when there is none."""
  text = text.split(_IM_END)[0]
  found = None
  for line in text.splitlines():
    m = _LABEL_RE.search(line)
    if m:
      found = m.group(1)
  if found is None:
    return None
  found = normalise(found)
  return found or None


def match_label(text: str, candidates: Sequence[str]) -> int | None:
  """Index of the candidate the reply names, or None when it names none."""
  said = parse_label(text)
  if said is None:
    said = normalise(text.split(_IM_END)[0])
  names = [normalise(c) for c in candidates]
  for i, name in enumerate(names):
    if said == name:
      return i
  best, best_len = None, 0
  for i, name in enumerate(names):
    if name and name in said and len(name) > best_len:
      best, best_len = i, len(name)
  return best


_ANSWER_RE = re.compile(r"answer\s*:\s*(.*)", re.IGNORECASE)
_LETTER_RE = re.compile(r"^\(?([a-h])\)?(?:[\s.):]|$)", re.IGNORECASE)


def parse_choice(text: str, options: Sequence[str]) -> int | None:
  """Index of the option a QA reply picks, or None.

  Reads the last 'Answer:' line (else the whole reply): a leading letter '(B)', 'B)' or
  'B.' picks that option when it exists; otherwise the option whose normalised text the reply
  names (exactly, else the longest contained, as `match_label`).
  """
  text = text.split(_IM_END)[0]
  said = None
  for line in text.splitlines():
    m = _ANSWER_RE.search(line)
    if m:
      said = m.group(1)
  said = (said if said is not None else text).strip()
  m = _LETTER_RE.match(said)
  if m:
    k = "abcdefgh".index(m.group(1).lower())
    if k < len(options):
      return k
  return match_label(said, options)


def parse_yes_no(text: str) -> bool | None:
  """True for a reply starting with YES, False for NO, None otherwise."""
  head = normalise(text.split(_IM_END)[0]).split(" ")[0] if text.strip() else ""
  head = head.strip(" .,!")
  if head == "yes":
    return True
  if head == "no":
    return False
  return None
