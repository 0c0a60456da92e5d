"""Property-based fuzzing: every parser over mutations of every real sample file (issue 12).

Mutations (hypothesis, derandomized so CI runs the same cases every time): text files are
truncated anywhere, lose / duplicate / swap lines, get a corrupted byte or an inserted junk
line, or have a number replaced by nan, inf, 1e300, -0, a word, ...; JSON documents also get
values of another type, deleted keys and duplicated items; .npy files get truncated headers
and payloads, damaged bytes, edited dtype / shape / order, and replaced values; .npz archives
get container damage and changed or dropped members.

`outcome()` states the invariant: a SkeletonFormatError naming the file (and its line or
JSON path where the format has them), or a record with finite float32 arrays of the
documented shapes and `valid` in [0, 1]; anything else, or a case over
CASE_TIME_LIMIT_S, fails. The per-parser counts (cases, errors, valid files by mutation
kind) are printed at the end of the pytest run.
"""

from __future__ import annotations

import collections
import io
import json
import re
import signal
from typing import Any, Callable

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from skel_llm import skeleton
from skel_llm.skeleton import SkeletonFormatError, SkeletonRecord

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


# ---------------------------------------------------------------------------------------------
# The samples: every real file in ../shared/data/real, by parser.

# (parser name, load() format, file under ../shared/data/real, kind, joints, has lines/paths)
SAMPLES = (
    [("ntu", "ntu", f"ntu_skeleton/{n}.skeleton", "text", 25, True)
     for n in ("S001C001P001R001A001", "S001C001P001R001A005", "S001C001P001R001A011",
               "S001C003P008R002A058", "S002C001P003R001A003", "S003C001P015R001A034",
               "S004C002P003R001A017")]
    + [("pku_mmd", "pku_mmd", "pku_mmd/A10N08-L.txt", "text", 25, True)]
    + [("kinetics", "kinetics", f"kinetics_skeleton/{n}.json", "json", 18, True)
       for n in ("__NrybzYzUg", "__PYrzYbzKE", "__U_scuxNlQ", "__u6odV5hrI", "__vOysOPoCY")]
    + [("coco", "coco", "coco17/test_coco.json", "json", 17, True),
       ("humanml3d", "humanml3d", "humanml3d/new_joints/012314.npy", "npy", 22, False),
       ("humanml3d_vecs", "humanml3d_vecs", "humanml3d/new_joint_vecs/012314.npy", "npy", 22,
        False),
       ("h36m", "h36m", "h36m/test_h36m_2d_detection.npy", "npy", 17, False),
       ("h36m", "h36m", "h36m/test_h36m_body3d.npz", "npz", 17, False)]
    + [("bvh", "bvh", f"bvh/{n}.bvh", "text", None, True)
       for n in ("131_01", "131_03", "test_mocapbank")]
    # No NW-UCLA file is in ../shared/data/real: its parser is fuzzed on a Kinect v1 clip of
    # the synthetic generator written in the NW-UCLA JSON layout.
    + [("nw_ucla", "nw_ucla", "<synthetic>/a01_s01_e00_v01.json", "json", 20, True)]
)
# Examples per sample file: ~1300 cases in all, well under a minute on one idle core.
MAX_EXAMPLES = {"text": 60, "json": 60, "npy": 70, "npz": 70}

_CACHE: dict[str, dict] = {}


def _sample(real, rel: str, kind: str) -> dict:
  """The sample's bytes and the pre-split views its mutations need (computed once)."""
  if rel not in _CACHE:
    if rel.startswith("<synthetic>"):
      from skel_llm.synthetic import generate_clip  # noqa: PLC0415
      clip = generate_clip("wave right hand", 0, num_frames=20, topology="kinect20")
      doc = {"file_name": "a01_s01_e00_v01",
             "skeletons": np.round(clip.positions[:, 0], 4).tolist(), "label": 1}
      raw = json.dumps(doc).encode()
    else:
      raw = (real / rel).read_bytes()
    entry = {"raw": raw, "lines": raw.split(b"\n")}
    if kind == "json":
      entry["doc"] = json.loads(raw)
      entry["paths"] = json_paths(entry["doc"])
    elif kind == "npy":
      entry["arr"] = np.load(io.BytesIO(raw), allow_pickle=False)
    elif kind == "npz":
      with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        entry["arrays"] = {k: z[k] for k in z.files}
    _CACHE[rel] = entry
  return _CACHE[rel]


def _mutation(data, entry: dict, kind: str) -> tuple[str, bytes]:
  if kind == "text":
    return mutate_text(data, entry["raw"], entry["lines"])
  if kind == "json":
    if data.draw(st.booleans(), label="structural"):
      return mutate_json(data, entry["doc"], entry["paths"])
    return mutate_text(data, entry["raw"], entry["lines"])
  if kind == "npy":
    return mutate_npy(data, entry["raw"], entry["arr"])
  return mutate_npz(data, entry["raw"], entry["arrays"])


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("parser,fmt,rel,kind,joints,lines", SAMPLES,
                         ids=[f"{s[0]}:{s[2].split('/')[-1]}" for s in SAMPLES])
def test_mutated_real_files_raise_format_errors_or_load_valid_records(
    parser, fmt, rel, kind, joints, lines, case_dir, fuzz_tally, request, shared_data):
  """Every mutation of every sample file either raises a SkeletonFormatError naming the file
  (and the line or JSON path, for text and JSON formats) or loads a record with finite float32
  positions [T, P, J, 3], valid in [0, 1]; no other exception, no case over the time limit.

  Mutations a format cannot detect (they leave a well-formed file; counted as 'valid' in the
  table printed at the end of the run, by mutation kind):
  - NTU: a digit changed inside a number, or a number replaced by '-0' / '1e-300' (any
    value within bounds is legal), a swap of two joint lines of the same body (same field
    count), a truncation or corruption inside a trailing blank area.
  - PKU-MMD: one frame per line with no frame count, so a deleted, duplicated or swapped
    frame line, an inserted line of 150 numbers, and a truncation at a line end are all
    well-formed sequences.
  - BVH: motion rows are self-describing only through 'Frames:', so a swapped motion row or a
    changed digit loads; so does any change inside the hierarchy that keeps it a tree
    (e.g. a changed OFFSET digit).
  - Kinetics / COCO / NW-UCLA JSON: a changed number within bounds, a deleted person, image or
    annotation, a deleted optional key (label, label_index, file_name, width/height, id), a
    duplicated person or annotation, whitespace changes.
  - .npy / .npz: a byte changed inside the payload that gives another in-bound value,
    fortran_order flipped (a transposed but well-shaped array), a dtype change to another
    numeric type of the same item size, a dropped optional .npz member (part, center, scale,
    imgname).
  """
  entry = _sample(shared_data / "real", rel, kind)
  name = rel.split("/")[-1]
  folder = case_dir / request.node.callspec.id.replace(":", "_").replace("/", "_")
  folder.mkdir(exist_ok=True)
  path = folder / name
  tally = fuzz_tally.setdefault(parser, collections.Counter())
  kinds = fuzz_tally.setdefault(f"{parser} valid by kind", collections.Counter())

  @hypothesis.settings(max_examples=MAX_EXAMPLES[kind], derandomize=True, deadline=None,
                       database=None, print_blob=True,
                       suppress_health_check=list(hypothesis.HealthCheck))
  @hypothesis.given(data=st.data())
  def case(data):
    mutation, content = _mutation(data, entry, kind)
    path.write_bytes(content)
    result = outcome(lambda: skeleton.load(path, format=fmt), str(path), joints=joints,
                     lines=lines)
    tally["cases"] += 1
    tally[result] += 1
    if result == "valid":
      kinds[mutation] += 1

  case()
