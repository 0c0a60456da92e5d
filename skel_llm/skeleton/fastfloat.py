"""Strict bulk conversion of whitespace-separated numeric text rows to float64."""

from __future__ import annotations

from typing import Callable

import numpy as np

from skel_llm.skeleton.errors import SkeletonFormatError


def _first_bad_row(rows: list[str], ncols: int, path: str,
                   line_of_row: Callable[[int], int]) -> SkeletonFormatError:
  for r, row in enumerate(rows):
    tokens = row.split()
    if len(tokens) != ncols:
      return SkeletonFormatError(path, line_of_row(r), f"expected {ncols} numbers, got "
                                 f"{len(tokens)}")
    for c, tok in enumerate(tokens):
      try:
        v = float(tok)
      except ValueError:
        return SkeletonFormatError(path, line_of_row(r), f"field {c + 1}: expected a number, "
                                   f"got {tok!r}")
      if not np.isfinite(v):
        return SkeletonFormatError(path, line_of_row(r), f"field {c + 1}: expected a finite "
                                   f"number, got {tok!r}")
  return SkeletonFormatError(path, None, "malformed numeric rows")


def parse_rows(rows: list[str], ncols: int, *, path: str,
               line_of_row: Callable[[int], int]) -> np.ndarray:
  """float64[len(rows), ncols] of text rows holding exactly `ncols` finite numbers each.

  Raises SkeletonFormatError naming the first offending row's line (via
  `line_of_row(row_index) -> 1-based line`) and field.
  """
  if not rows:
    return np.zeros((0, ncols), np.float64)
  blob = " ".join(rows)
  tokens = blob.split()
  if len(tokens) != len(rows) * ncols:
    raise _first_bad_row(rows, ncols, path, line_of_row)
  try:
    values = np.array(tokens, dtype=np.float64)
  except ValueError:
    raise _first_bad_row(rows, ncols, path, line_of_row) from None
  values = values.reshape(len(rows), ncols)
  if not np.isfinite(values).all():
    raise _first_bad_row(rows, ncols, path, line_of_row)
  # Equal totals can still hide one short and one long row: check per row.
  counts = np.fromiter((len(r.split()) for r in rows), np.int64, len(rows)) if _maybe_ragged(
      rows) else None
  if counts is not None and (counts != ncols).any():
    raise _first_bad_row(rows, ncols, path, line_of_row)
  return values


def _maybe_ragged(rows: list[str]) -> bool:
  return True
