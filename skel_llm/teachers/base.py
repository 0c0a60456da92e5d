"""The teacher interface, the spec parser and the rationale check.

A teacher turns a `Request` (one clip: its rendered frames and/or skeleton, the true label)
into a `Reply` (text, finish reason, token usage). Network teachers raise `TeacherError`
once their retries are spent; the job counts those clips as failed and writes nothing.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Protocol, Sequence

import numpy as np

SPEC_FORMS = ("kinematic", "openai:<base_url>#<model>[?key_env=VAR&...]",
              "local:<run workdir or HF InternVL folder>")


class TeacherError(RuntimeError):
  """A request that failed for good (retries spent, or an error that retrying cannot fix)."""


@dataclasses.dataclass(frozen=True)
class Request:
  """One clip to explain.

  Attributes:
    id: the clip id (`Clip.key`), the join key of `config.data.rationale_file`.
    label: the true class name.
    candidates: the split's candidate class names (for teachers that show them).
    frames: uint8[n, S, S, 3] rendered frames, or None when the teacher needs none.
    positions: float32[T, P, J, 3] the clip's skeleton in metres, +y up.
    topology: registry name of the skeleton.
    frames_sha256: digest of `frames` (of `positions` when there are no frames).
  """

  id: str
  label: str
  candidates: Sequence[str]
  frames: np.ndarray | None
  positions: np.ndarray
  topology: str
  frames_sha256: str


@dataclasses.dataclass(frozen=True)
class Reply:
  text: str
  finish_reason: str = "stop"
  prompt_tokens: int = 0
  completion_tokens: int = 0


class Teacher(Protocol):
  """What the job needs from a teacher."""

  kind: str  # 'kinematic' | 'openai' | 'local'
  model: str  # the model name recorded in every line and in the cache key
  prompt_version: str
  needs_frames: bool
  prices: tuple[float, float] | None  # USD per million (prompt, completion) tokens

  def ask(self, request: Request) -> Reply:
    ...

  def close(self) -> None:
    ...


def parse_options(query: str, spec: str, known: Sequence[str]) -> dict[str, str]:
  """`a=1&b=2` -> {'a': '1', 'b': '2'}; an unknown option raises naming the spec."""
  opts = dict(urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False))
  unknown = sorted(set(opts) - set(known))
  if unknown:
    raise ValueError(f"teacher spec {spec!r}: unknown option(s) {unknown}; known: {list(known)}")
  return opts


def make_teacher(spec: str, **kwargs) -> Teacher:
  """The teacher a spec names (see the package docstring); `kwargs` go to its constructor."""
  if spec == "kinematic":
    from skel_llm.teachers.kinematic_teacher import KinematicTeacher
    return KinematicTeacher()
  if spec.startswith("openai:"):
    from skel_llm.teachers.openai_teacher import OpenAITeacher
    return OpenAITeacher.from_spec(spec, **kwargs)
  if spec.startswith("local:"):
    from skel_llm.teachers.local import LocalTeacher
    return LocalTeacher.from_spec(spec, **kwargs)
  raise ValueError(f"unknown teacher spec {spec!r}; expected one of: {', '.join(SPEC_FORMS)}")


def validate(text: str, label: str, finish_reason: str) -> str | None:
  """None when the rationale is kept, else the reason it is rejected.

  Kept: the reply was not cut at max_tokens and its last non-empty line is exactly
  `Label: <label>` (surrounding spaces aside).
  """
  if finish_reason == "length":
    return "truncated at max_tokens (finish_reason 'length')"
  lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
  if not lines:
    return "empty reply"
  last = lines[-1]
  want = f"Label: {label}"
  if last == want:
    return None
  if not last.lower().startswith("label:"):
    return f"no final 'Label:' line (last line {last[:80]!r})"
  named = last.split(":", 1)[1].strip()
  if named.lower() == label.lower():  # right class, other spelling ('label:', case)
    return f"label line {last!r} is not exactly {want!r}"
  return f"wrong label {named!r} (true {label!r})"
