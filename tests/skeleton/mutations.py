"""Mutations of skeleton files and the invariant parsers keep on them (helpers of the fuzz tests).

`mutate_*` draw one mutation with a hypothesis `data` object and return (kind, mutated bytes).
`outcome()` runs a parser and returns 'error' (a SkeletonFormatError naming the file, and its
line or JSON path where the format has them) or 'valid' (a record with finite float32 arrays
of the documented shapes and `valid` in [0, 1]); anything else fails the calling test.
Not collected by pytest (no test_ prefix); tests import it by file path (`import_mutations`
in test_fuzz.py), since pytest runs with --import-mode=importlib.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

from skel_llm.skeleton import SkeletonFormatError, SkeletonRecord


# CI runs the same derandomized cases every time. SKEL_LLM_FUZZ_SCALE=N (N > 1) runs N times as
# many cases from a random seed instead, for a deeper search on a developer's machine.
FUZZ_SCALE = max(1, int(os.environ.get("SKEL_LLM_FUZZ_SCALE", "1")))
DERANDOMIZE = FUZZ_SCALE == 1

CASE_TIME_LIMIT_S = 20  # generous: the development machine is shared; a real case takes < 0.1 s

# Values a number is replaced by: overflow to float32 inf, NaN / inf spellings, signed zero,
# words, a too-large integer, Python-only spellings.
NUMBER_REPLACEMENTS = ("nan", "NaN", "inf", "-inf", "+inf", "Infinity", "1e300", "-1e300",
                       "3.5e38", "1e-300", "-0", "-0.0", "abc", "1_0", "0x10", "1e", "--1",
                       "1.2.3", "9" * 400, "")
JUNK_LINES = ("", "junk", "0", "-1", "1 2 3", "nan", "999999999", "#", "\t", "}", "{", "[",
              "MOTION", "End Site", "25", "1e300")
CORRUPT_BYTES = b"0159.-+e \t\n\r\x00\xffx,\"[]{}:"
# A whole number token (not the tail of one).
_NUMBER = re.compile(rb"(?<![0-9A-Za-z.+-])[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _lines(raw: bytes) -> list[bytes]:
  return raw.split(b"\n")


def mutate_text(data: Any, raw: bytes, lines: list[bytes]) -> tuple[str, bytes]:
  """One mutation of a text file (also used on JSON text)."""
  kind = data.draw(st.sampled_from(("truncate", "delete_line", "duplicate_line", "swap_lines",
                                    "corrupt_byte", "insert_junk", "replace_number",
                                    "replace_number_early")), label="kind")
  n = len(lines)
  if kind == "truncate":
    return kind, raw[:data.draw(st.integers(0, len(raw) - 1), label="cut")]
  if kind in ("delete_line", "duplicate_line", "insert_junk"):
    k = data.draw(st.integers(0, n - 1), label="line")
    if kind == "delete_line":
      out = lines[:k] + lines[k + 1:]
    elif kind == "duplicate_line":
      out = lines[:k + 1] + lines[k:]
    else:
      junk = data.draw(st.sampled_from(JUNK_LINES), label="junk").encode()
      out = lines[:k] + [junk] + lines[k:]
      kind = f"insert_junk:{junk.decode()!r}"
    return kind, b"\n".join(out)
  if kind == "swap_lines":
    a = data.draw(st.integers(0, n - 1), label="a")
    b = data.draw(st.integers(0, n - 1), label="b")
    out = list(lines)
    out[a], out[b] = out[b], out[a]
    return kind, b"\n".join(out)
  if kind == "corrupt_byte":
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    byte = data.draw(st.sampled_from(CORRUPT_BYTES), label="byte")
    return kind, raw[:pos] + bytes([byte]) + raw[pos + 1:]
  # replace_number: the first number token at or after a drawn position (early: in the
  # first 2 KiB, where headers, counts and the first frame are).
  end = min(len(raw), 2048) if kind == "replace_number_early" else len(raw)
  pos = data.draw(st.integers(0, end - 1), label="pos")
  m = _NUMBER.search(raw, pos) or _NUMBER.search(raw)
  word = data.draw(st.sampled_from(NUMBER_REPLACEMENTS), label="word").encode()
  return f"replace_number:{word.decode()[:8]!r}", raw[:m.start()] + word + raw[m.end():]


def json_paths(doc: Any) -> list[tuple]:
  """Every path (tuple of keys / indices) in a JSON document, root excluded."""
  out, stack = [], [((), doc)]
  while stack:
    at, value = stack.pop()
    if at:
      out.append(at)
    if isinstance(value, dict):
      stack.extend((at + (k,), v) for k, v in value.items())
    elif isinstance(value, list):
      stack.extend((at + (k,), v) for k, v in enumerate(value))
  out.sort(key=lambda p: (len(p), repr(p)))
  return out


JSON_REPLACEMENTS = (None, "1", "abc", True, False, [], {}, 1e300, -1e300, 10 ** 400, 0, -0.0, -1,
                     1.5, 2, 255, float("nan"), float("inf"), [1, 2], {"a": 1})


def mutate_json(data: Any, doc: Any, paths: list[tuple]) -> tuple[str, bytes]:
  """One change of a JSON document's structure or types, dumped back to text."""
  doc = json.loads(json.dumps(doc))  # a private copy
  kind = data.draw(st.sampled_from(("replace_value", "delete", "duplicate_item")), label="kind")
  # Short paths (top-level keys, first frames) are drawn as often as deep ones.
  depth = data.draw(st.integers(1, max(len(p) for p in paths)), label="depth")
  at_depth = [p for p in paths if len(p) == depth] or paths
  path = at_depth[data.draw(st.integers(0, len(at_depth) - 1), label="path")]
  parent = doc
  for key in path[:-1]:
    parent = parent[key]
  key = path[-1]
  if kind == "replace_value":
    value = data.draw(st.sampled_from(JSON_REPLACEMENTS), label="value")
    parent[key] = value
    kind = f"replace_value:{type(value).__name__}"
  elif kind == "delete":
    del parent[key]
  elif isinstance(parent, list):
    parent.insert(key, json.loads(json.dumps(parent[key])))
  else:
    kind = "duplicate_item:noop"
  return kind, json.dumps(doc).encode()


def _npy_header_end(raw: bytes) -> int:
  major = raw[6]
  size = int.from_bytes(raw[8:10], "little") if major == 1 else int.from_bytes(raw[8:12], "little")
  return (10 if major == 1 else 12) + size


def _save(arr: np.ndarray) -> bytes:
  buf = io.BytesIO()
  np.save(buf, arr, allow_pickle=False)
  return buf.getvalue()


NPY_DTYPES = ("<f8", ">f4", "<f2", "<i4", "|u1", "|b1", "<U1", "<c8", "|O", "<V4", "<i8")


def mutate_npy(data: Any, raw: bytes, arr: np.ndarray) -> tuple[str, bytes]:
  """One mutation of a .npy file: truncation, byte damage, header edits, replaced values."""
  head = _npy_header_end(raw)
  kind = data.draw(st.sampled_from(("truncate_header", "truncate_payload", "corrupt_header",
                                    "corrupt_payload", "header_dtype", "header_shape",
                                    "header_fortran", "replace_value")), label="kind")
  if kind == "truncate_header":
    return kind, raw[:data.draw(st.integers(0, head), label="cut")]
  if kind == "truncate_payload":
    return kind, raw[:data.draw(st.integers(head, len(raw) - 1), label="cut")]
  if kind in ("corrupt_header", "corrupt_payload"):
    lo, hi = (0, head - 1) if kind == "corrupt_header" else (head, len(raw) - 1)
    pos = data.draw(st.integers(lo, hi), label="pos")
    byte = data.draw(st.integers(0, 255), label="byte")
    return kind, raw[:pos] + bytes([byte]) + raw[pos + 1:]
  header = raw[:head].decode("latin1")
  if kind == "header_dtype":
    dtype = data.draw(st.sampled_from(NPY_DTYPES), label="dtype")
    new = re.sub(r"'descr': '[^']*'", f"'descr': '{dtype}'", header)
    kind = f"header_dtype:{dtype}"
  elif kind == "header_shape":
    shape = tuple(arr.shape)
    choice = data.draw(st.sampled_from(("first-1", "first+1", "swap", "extra", "drop", "zero")),
                       label="shape")
    shape = {"first-1": (shape[0] - 1,) + shape[1:], "first+1": (shape[0] + 1,) + shape[1:],
             "swap": shape[::-1], "extra": shape + (1,), "drop": shape[:-1],
             "zero": (0,) + shape[1:]}[choice]
    new = re.sub(r"'shape': \([^)]*\)", f"'shape': {shape!r}", header)
    kind = f"header_shape:{choice}"
  elif kind == "header_fortran":
    new = header.replace("'fortran_order': False", "'fortran_order': True")
  else:
    value = data.draw(st.sampled_from((np.nan, np.inf, -np.inf, 1e300, -1e300, 3.5e38, -0.0,
                                       1e4, -1e4)), label="value")
    flat = data.draw(st.integers(0, arr.size - 1), label="index")
    out = arr.astype(np.float64 if abs(value) > 3e38 else arr.dtype)
    out.reshape(-1)[flat] = value
    return f"replace_value:{value:g}", _save(out)
  # Keep the header's length (numpy pads it to a multiple of 64 bytes) and fix its size field.
  pre = 10 if raw[6] == 1 else 12
  body = new[pre:].rstrip("\n").rstrip(" ")
  text = body + " " * max(head - pre - len(body) - 1, 0) + "\n"
  prefix = raw[:8] + len(text).to_bytes(pre - 8, "little")
  return kind, prefix + text.encode("latin1") + raw[head:]


def mutate_npz(data: Any, raw: bytes, arrays: dict[str, np.ndarray]) -> tuple[str, bytes]:
  """One mutation of an .npz archive: container damage or a changed / dropped member."""
  kind = data.draw(st.sampled_from(("truncate", "corrupt_byte", "drop_key", "replace_value",
                                    "member_dtype", "member_shape")), label="kind")
  if kind == "truncate":
    return kind, raw[:data.draw(st.integers(0, len(raw) - 1), label="cut")]
  if kind == "corrupt_byte":
    pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
    return kind, raw[:pos] + bytes([data.draw(st.integers(0, 255), label="byte")]) + raw[pos + 1:]
  out = dict(arrays)
  key = data.draw(st.sampled_from(sorted(out)), label="key")
  if kind == "drop_key":
    del out[key]
  elif kind == "replace_value" and out[key].dtype.kind == "f":
    value = data.draw(st.sampled_from((np.nan, np.inf, 1e300, -1e300, -0.0, 2.0, -1.0, 1e5)),
                      label="value")
    arr = out[key].copy()
    arr.reshape(-1)[data.draw(st.integers(0, arr.size - 1), label="index")] = value
    out[key] = arr
    kind = f"replace_value:{key}:{value:g}"
  elif kind == "member_dtype":
    dtype = data.draw(st.sampled_from(("<f4", "<i4", "|b1", "<U3", "<c8")), label="dtype")
    try:
      out[key] = out[key].astype(dtype)
    except ValueError:  # names that are not numbers: a bytes view of the same size instead
      out[key] = out[key].view(np.uint8)
    kind = f"member_dtype:{key}:{dtype}"
  else:
    arr = out[key]
    out[key] = arr[:-1] if data.draw(st.booleans(), label="shorter") else arr[..., None]
    kind = f"member_shape:{key}"
  buf = io.BytesIO()
  np.savez(buf, **out)
  return kind, buf.getvalue()


class CaseTimeout(Exception):
  """A parser ran past CASE_TIME_LIMIT_S on one mutated file (not a SkeletonFormatError)."""


def _alarm(signum, frame):
  raise CaseTimeout(f"parser ran longer than {CASE_TIME_LIMIT_S} s")


def outcome(parse: Callable[[], Any], path: str, *, joints: int | None, lines: bool,
            persons: int | None = None) -> str:
  """'error' or 'valid'; asserts the invariant (see the module docstring)."""
  old = signal.signal(signal.SIGALRM, _alarm)
  signal.setitimer(signal.ITIMER_REAL, CASE_TIME_LIMIT_S)
  try:
    result = parse()
  except SkeletonFormatError as e:
    msg = str(e)
    assert path in msg, f"error does not name the file: {msg}"
    if lines:
      assert e.where is not None, f"error names no line or JSON path: {msg}"
    return "error"
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)
  for rec in result if isinstance(result, list) else [result]:
    check_record(rec, joints=joints, persons=persons)
  return "valid"


def check_record(rec: SkeletonRecord, *, joints: int | None, persons: int | None = None) -> None:
  """A record's documented invariants: shapes, dtypes, finiteness, valid in [0, 1]."""
  assert isinstance(rec, SkeletonRecord)
  pos, valid = rec.positions, rec.valid
  assert pos.dtype == np.float32 and valid.dtype == np.float32
  assert pos.ndim == 4 and pos.shape[-1] == 3 and valid.shape == pos.shape[:3], pos.shape
  assert pos.shape[0] >= 1 and pos.shape[1] >= 1
  if joints is not None:
    assert pos.shape[2] == joints, pos.shape
  else:
    assert pos.shape[2] == len(rec.topology.joint_names)
  if persons is not None:
    assert pos.shape[1] <= persons
  assert np.isfinite(pos).all(), "non-finite positions"
  assert ((valid >= 0) & (valid <= 1)).all(), "valid outside [0, 1]"
  if rec.is_2d:
    assert (pos[..., 2] == 0).all()
  assert np.isfinite(rec.fps) and rec.fps >= 0
