"""File reading helpers shared by the parsers; every failure is a SkeletonFormatError."""

from __future__ import annotations

import json
import os
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
  raw = read_bytes(path)
  if not raw.strip():
    raise SkeletonFormatError(path, 1, "empty file: expected a JSON document")
  try:
    # NaN / Infinity are not JSON; refuse them at the token.
    return json.loads(raw, parse_constant=_reject_constant)
  except _ConstantError as e:
    raise SkeletonFormatError(path, None, f"expected finite JSON numbers, got {e.args[0]}") from None
  except json.JSONDecodeError as e:
    raise SkeletonFormatError(path, e.lineno, f"expected valid JSON: {e.msg} "
                              f"(column {e.colno})") from None
  except UnicodeDecodeError:
    raise SkeletonFormatError(path, None, "expected UTF-8 JSON text") from None


class _ConstantError(ValueError):
  pass


def _reject_constant(name: str):
  raise _ConstantError(name)


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


def numbers(value: Any, shape: tuple[int, ...], where: str, path: str) -> np.ndarray:
  """float64 array of a JSON list with exactly `shape` (-1 = any) of finite numbers."""
  try:
    arr = np.asarray(value, dtype=np.float64)
  except (ValueError, TypeError):
    raise SkeletonFormatError(path, where, f"expected a numeric array of shape {shape}") from None
  if arr.ndim != len(shape) or any(s != -1 and a != s for a, s in zip(arr.shape, shape)):
    raise SkeletonFormatError(path, where, f"expected shape {shape}, got {arr.shape}")
  if not np.isfinite(arr).all():
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    raise SkeletonFormatError(path, f"{where}{list(idx)}", "expected finite numbers")
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


def basename_stem(path: str) -> str:
  name = os.path.basename(path)
  return name.split(".")[0]
