"""File reading helpers shared by the parsers; every failure is a SkeletonFormatError."""

from __future__ import annotations

import json
import os
import tokenize
import zipfile
import zlib
from typing import Any

import numpy as np

from skel_llm.skeleton.errors import SkeletonFormatError


def read_bytes(path: str) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except OSError as e:
    raise SkeletonFormatError(path, None, f"cannot read file ({e.strerror})") from None


def read_text(path: str) -> str:
  """The file as ASCII text (all supported text formats are ASCII numbers and names)."""
  raw = read_bytes(path)
  try:
    return raw.decode("ascii")
  except UnicodeDecodeError as e:
    line = raw[:e.start].count(b"\n") + 1
    raise SkeletonFormatError(path, line, "expected ASCII text, found a non-ASCII byte") from None


def read_json(path: str) -> Any:
  """The parsed JSON document; NaN / Infinity (not JSON) are refused naming their JSON path."""
  raw = read_bytes(path)
  if not raw.strip():
    raise SkeletonFormatError(path, 1, "empty file: expected a JSON document")
  constants: list[_Constant] = []

  def constant(name: str) -> _Constant:
    constants.append(_Constant(name))
    return constants[-1]

  try:
    doc = json.loads(raw, parse_constant=constant)
  except json.JSONDecodeError as e:
    raise SkeletonFormatError(path, e.lineno, f"expected valid JSON: {e.msg} "
                              f"(column {e.colno})") from None
  except UnicodeDecodeError as e:
    line = e.object[:e.start].count(b"\n") + 1
    raise SkeletonFormatError(path, line, "expected UTF-8 JSON text") from None
  except RecursionError:
    raise SkeletonFormatError(path, None, "expected JSON nested less than ~1000 levels") from None
  if constants:
    where = _find_path(doc, "$", lambda v: isinstance(v, _Constant))
    raise SkeletonFormatError(path, where, f"expected a finite JSON number, got "
                              f"{constants[0].name}")
  return doc


class _Constant:
  """Stands in for a NaN / Infinity token until its JSON path is found."""

  def __init__(self, name: str):
    self.name = name


def _find_path(obj: Any, where: str, pred) -> str | None:
  """JSON path (`$.data[3].pose[0]`) of the first value satisfying `pred`, depth first."""
  stack = [(obj, where)]
  while stack:
    value, at = stack.pop()
    if pred(value):
      return at
    if isinstance(value, dict):
      stack.extend(reversed([(v, f"{at}.{k}") for k, v in value.items()]))
    elif isinstance(value, list):
      stack.extend(reversed([(v, f"{at}[{k}]") for k, v in enumerate(value)]))
  return None


def field(obj: Any, key: str | int, json_path: str, path: str, kind: type | tuple | None = None):
  """obj[key] checked to exist (and be of `kind`); errors name the JSON path."""
  where = f"{json_path}[{key!r}]" if isinstance(key, str) else f"{json_path}[{key}]"
  try:
    value = obj[key]
  except (KeyError, IndexError, TypeError):
    raise SkeletonFormatError(path, json_path, f"expected key {key!r}") from None
  if kind is not None and not isinstance(value, kind) or isinstance(value, bool) and kind in (
      int, float, (int, float)):
    names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
    raise SkeletonFormatError(path, where, f"expected {names}, got {type(value).__name__}")
  return value


_NUMBER_TYPES = (int, float)
_NUMBER_SET = frozenset(_NUMBER_TYPES)


def _first_non_number(value: Any, where: str) -> tuple[str, Any] | None:
  """(JSON path, value) of the first leaf of nested lists that is not an int or float (bools,
  strings, null and objects are not numbers), or None."""
  if type(value) in _NUMBER_TYPES:
    return None
  if not isinstance(value, list):
    return where, value
  if set(map(type, value)) <= _NUMBER_SET:  # the common flat case, at C speed
    return None
  for k, v in enumerate(value):
    bad = _first_non_number(v, f"{where}[{k}]")
    if bad is not None:
      return bad
  return None


def numbers(value: Any, shape: tuple[int, ...], where: str, path: str) -> np.ndarray:
  """float64 array of a JSON list with exactly `shape` (-1 = any) of finite numbers."""
  bad = _first_non_number(value, where)
  if bad is not None:
    got = "a list" if isinstance(bad[1], list) else type(bad[1]).__name__
    raise SkeletonFormatError(path, bad[0], f"expected a number (array of shape {shape}), "
                              f"got {got}")
  try:
    arr = np.asarray(value, dtype=np.float64)
  except (ValueError, TypeError):
    raise SkeletonFormatError(path, where, f"expected a numeric array of shape {shape}") from None
  except OverflowError:
    big = _find_path(value, where, lambda v: type(v) is int and abs(v) > 1e308)
    raise SkeletonFormatError(path, big or where, "expected a number within float64 range, got "
                              "an integer too large") from None
  if arr.ndim != len(shape) or any(s != -1 and a != s for a, s in zip(arr.shape, shape)):
    raise SkeletonFormatError(path, where, f"expected shape {shape}, got {arr.shape}")
  if not np.isfinite(arr).all():
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    raise SkeletonFormatError(path, where + "".join(f"[{i}]" for i in idx),
                              "expected finite numbers")
  return arr


def check_array(arr: np.ndarray, shape: tuple[int, ...], path: str, what: str) -> np.ndarray:
  """A numeric array checked for `shape` (-1 = any) and finiteness."""
  if arr.dtype.kind not in "fiu":
    raise SkeletonFormatError(path, what, f"expected a numeric array, got dtype {arr.dtype}")
  if arr.ndim != len(shape) or any(s != -1 and a != s for a, s in zip(arr.shape, shape)):
    raise SkeletonFormatError(path, what, f"expected shape {shape}, got {arr.shape}")
  bad = ~np.isfinite(arr)
  if bad.any():
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    raise SkeletonFormatError(path, what, f"expected finite numbers, got {arr[idx]} at {idx}")
  return arr


# What numpy raises on a damaged .npy / .npz: header syntax (ast / tokenize), zip container,
# zlib stream, short payload, unknown dtype.
NPY_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, KeyError,
              TypeError, NotImplementedError, MemoryError, OverflowError, zipfile.BadZipFile,
              zlib.error)


def npy_header(path: str) -> tuple[tuple[int, ...], np.dtype]:
  """(shape, dtype) of a .npy file whose payload is exactly what its header promises.

  Checked before anything is loaded, so a damaged header can neither allocate a huge
  array nor read a short or padded payload.
  """
  try:
    with open(path, "rb") as f:
      version = np.lib.format.read_magic(f)
      if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
      elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
      else:
        raise ValueError(f"unsupported .npy version {version}")
      offset = f.tell()
  except NPY_ERRORS as e:
    raise SkeletonFormatError(path, "header", f"expected a .npy header ({type(e).__name__}: "
                              f"{e})") from None
  if dtype.hasobject:
    raise SkeletonFormatError(path, "header", "pickled .npy (object array): expected a plain "
                              "numeric array")
  expected = offset + int(np.prod(shape, dtype=object)) * dtype.itemsize
  size = os.path.getsize(path)
  if size != expected:
    raise SkeletonFormatError(path, "payload", f"header {dtype.str}{list(shape)} promises "
                              f"{expected - offset} payload bytes, the file holds {size - offset}")
  return tuple(shape), dtype


def load_npy(path: str) -> np.ndarray:
  """A plain (non-pickle) .npy array, its header checked first (`npy_header`)."""
  npy_header(path)
  try:
    return np.load(path, allow_pickle=False)
  except NPY_ERRORS as e:
    raise SkeletonFormatError(path, None, f"expected a plain .npy array ({type(e).__name__}: "
                              f"{e})") from None


def basename_stem(path: str) -> str:
  name = os.path.basename(path)
  return name.split(".")[0]
