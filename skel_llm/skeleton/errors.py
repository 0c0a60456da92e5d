"""The one error class every skeleton parser raises on malformed input."""

from __future__ import annotations

import os


class SkeletonFormatError(ValueError):
  """Malformed or unsupported skeleton input.

  The message always names the file, the place in it (line number or JSON
  path) and what was expected there, e.g.
  ``S001.skeleton: line 7: expected 12 numbers per joint line, got 11``.
  """

  def __init__(self, path: str | os.PathLike | None, where: str | int | None, expected: str):
    self.path = None if path is None else os.fspath(path)
    self.where = where
    self.expected = expected
    parts = [self.path or "<input>"]
    if where is not None:
      parts.append(f"line {where}" if isinstance(where, int) else str(where))
    parts.append(expected)
    super().__init__(": ".join(parts))
