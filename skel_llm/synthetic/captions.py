"""Reference captions of a synthetic clip, from the generator's step-by-step description.

A description is numbered lines: the viewpoint ("The person stands upright, facing the
camera..."), the motion steps, then `Label: <name>`. A caption says what the body does, so
the viewpoint line, the numbering and the label are dropped. Two references per clip (as
HumanML3D has several per motion): every motion step in order, and the first step alone.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"^\s*\d+\.\s*")


def steps(description: str) -> list[str]:
  """The motion sentences of a description, in order (viewpoint line and label dropped)."""
  lines = [ln.strip() for ln in description.splitlines() if ln.strip()]
  body = [_NUMBER.sub("", ln) for ln in lines if not ln.lower().startswith("label:")]
  if len(body) < 2:
    raise ValueError(f"a synthetic description needs a viewpoint line and at least one motion "
                     f"step, got {description[:160]!r}")
  return body[1:]


def captions(description: str) -> tuple[str, ...]:
  """(all motion steps joined, the first step): the clip's reference captions."""
  s = steps(description)
  whole = " ".join(s)
  return (whole,) if len(s) == 1 else (whole, s[0])
