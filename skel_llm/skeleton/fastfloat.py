"""Strict bulk conversion of whitespace-separated numeric text rows to float64.

Skeleton text files are mostly decimal numbers, and converting them token by
token (`float(tok)`, `np.array(tokens, float)`) costs ~150-250 ns per value.
The rows are instead handed, joined, to Apache Arrow's C++ CSV reader
(single-threaded, space-delimited, every column float64, no nulls), which
checks the column count of every row and converts with a correctly rounded
parser, so values are bit-identical to Python's `float(tok)`.

Rows separated by tabs or several blanks (PKU-MMD lines start with a blank)
are normalised and given to Arrow again. Anything Arrow still refuses (a
wrong field count, a non-numeric field) is re-scanned row by row in Python
and the first bad line and field are named in a SkeletonFormatError.
Every token must match `NUMBER_RE` and be finite (no 'nan', 'inf', '1_000').
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Callable

import numpy as np

from skel_llm.skeleton.errors import SkeletonFormatError

NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _check_rows(rows: list[str], ncols: int, path: str, line_of_row: Callable[[int], int],
                what: str) -> SkeletonFormatError | None:
  """The first malformed row's error, or None when every row is fine."""
  for r, row in enumerate(rows):
    tokens = row.split()
    if len(tokens) != ncols:
      return SkeletonFormatError(path, line_of_row(r), f"expected {ncols} {what}, got "
                                 f"{len(tokens)}")
    for c, tok in enumerate(tokens):
      if tok.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return SkeletonFormatError(path, line_of_row(r), f"field {c + 1}: expected a finite "
                                   f"number, got {tok!r}")
      if NUMBER_RE.fullmatch(tok) is None:
        return SkeletonFormatError(path, line_of_row(r), f"field {c + 1}: expected a number, "
                                   f"got {tok!r}")
      if not np.isfinite(float(tok)):
        return SkeletonFormatError(path, line_of_row(r), f"field {c + 1}: expected a finite "
                                   f"number, got {tok!r}")
  return None


@functools.lru_cache(maxsize=32)
def _arrow_options(ncols: int):
  import pyarrow as pa  # noqa: PLC0415 (imported on first use: ~0.1 s)
  import pyarrow.csv as pa_csv  # noqa: PLC0415

  names = [str(i) for i in range(ncols)]
  parse = pa_csv.ParseOptions(delimiter=" ", quote_char=False, double_quote=False,
                              escape_char=False, newlines_in_values=False)
  convert = pa_csv.ConvertOptions(column_types={n: pa.float64() for n in names}, null_values=[],
                                  strings_can_be_null=False, quoted_strings_can_be_null=False)
  return names, parse, convert


def _arrow_parse(blob: bytes | memoryview, ncols: int) -> np.ndarray | None:
  """float64[rows, ncols] via Arrow's CSV reader, or None when it refuses the text."""
  import pyarrow as pa  # noqa: PLC0415
  import pyarrow.csv as pa_csv  # noqa: PLC0415

  names, parse, convert = _arrow_options(ncols)
  read = pa_csv.ReadOptions(column_names=names, use_threads=False,
                            block_size=max(1 << 20, len(blob) + 1))
  try:
    table = pa_csv.read_csv(pa.py_buffer(blob), read_options=read, parse_options=parse,
                            convert_options=convert)
  except pa.ArrowInvalid:
    return None
  out = np.empty((table.num_rows, ncols), np.float64)
  for c, column in enumerate(table.columns):
    out[:, c] = column.to_numpy()
  return out


def try_parse(blob: bytes | memoryview, nrows: int, ncols: int) -> np.ndarray | None:
  """float64[nrows, ncols] when `blob` is exactly `nrows` single-space separated lines of
  `ncols` finite numbers, else None (use `parse_blob` to get the error)."""
  return _checked(_arrow_parse(blob, ncols), nrows)


def parse_blob(blob: bytes | memoryview, nrows: int, ncols: int, *, path: str,
               rows: Callable[[], list[str]], line_of_row: Callable[[int], int],
               what: str = "numbers") -> np.ndarray:
  """float64[nrows, ncols] of `blob`, `nrows` lines (LF or CRLF) of `ncols` finite numbers.

  `rows()` gives the same lines as text; it is only called to find and name a
  bad line (via `line_of_row(row_index) -> 1-based line`) when Arrow refuses
  the blob.
  """
  if nrows == 0:
    return np.zeros((0, ncols), np.float64)
  values = _checked(_arrow_parse(blob, ncols), nrows)
  if values is None:
    # Tabs, repeated or leading blanks: normalise the separators and let Arrow try again.
    text_rows = rows()
    try:
      tidy = "\n".join(" ".join(r.split()) for r in text_rows).encode("ascii")
      values = _checked(_arrow_parse(tidy, ncols), nrows) if all(text_rows) else None
    except UnicodeEncodeError:
      values = None
    if values is None:
      error = _check_rows(text_rows, ncols, path, line_of_row, what)
      if error is not None:
        raise error
      values = np.array(" ".join(text_rows).split(), np.float64).reshape(nrows, ncols)
  return values


def _checked(values: np.ndarray | None, nrows: int) -> np.ndarray | None:
  """Arrow's result if complete and finite (it skips empty lines and accepts 'nan'/'inf')."""
  if values is None or values.shape[0] != nrows or not np.isfinite(values).all():
    return None
  return values


_SCRATCH = threading.local()


def _scratch(size: int) -> np.ndarray:
  """A per-thread uint8 buffer of at least `size` bytes, reused across calls.

  Building each file's numeric text in fresh memory costs a page fault per
  4 KiB (about a fifth of the parse time for an NTU file).
  """
  buf = getattr(_SCRATCH, "buf", None)
  if buf is None or buf.size < size:
    buf = np.empty(max(size, 1 << 20, 0 if buf is None else 2 * buf.size), np.uint8)
    _SCRATCH.buf = buf
  return buf


def parse_spans(raw: bytes, spans: list[tuple[int, int]], nrows: int, ncols: int, *, path: str,
                rows: Callable[[], list[str]], line_of_row: Callable[[int], int],
                what: str = "numbers") -> np.ndarray:
  """`parse_blob` of the byte ranges `spans` of `raw` joined by line breaks.

  The ranges are gathered into a reused buffer instead of a new bytes object.
  """
  total = sum(e - s for s, e in spans) + len(spans)
  buf = _scratch(total)
  src = np.frombuffer(raw, np.uint8)
  pos = 0
  for s, e in spans:
    buf[pos:pos + e - s] = src[s:e]
    pos += e - s
    buf[pos] = 10
    pos += 1
  blob = memoryview(buf)[:max(pos - 1, 0)]
  return parse_blob(blob, nrows, ncols, path=path, rows=rows, line_of_row=line_of_row, what=what)


def parse_rows(rows: list[str], ncols: int, *, path: str, line_of_row: Callable[[int], int],
               what: str = "numbers") -> np.ndarray:
  """float64[len(rows), ncols] of text rows holding exactly `ncols` finite numbers each.

  Raises SkeletonFormatError naming the first offending row's line (via
  `line_of_row(row_index) -> 1-based line`) and field.
  """
  try:
    blob = "\n".join(rows).encode("ascii")
  except UnicodeEncodeError:
    blob = b"\x00"  # refused by Arrow: the rows are then checked one by one
  return parse_blob(blob, len(rows), ncols, path=path, rows=lambda: rows,
                    line_of_row=line_of_row, what=what)
