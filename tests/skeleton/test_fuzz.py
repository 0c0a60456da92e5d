"""Property-based fuzzing: every parser over mutations of every real sample file (issue 12).

Mutations (hypothesis, derandomized so CI runs the same cases every time): text files are
truncated anywhere, lose / duplicate / swap lines, get a corrupted byte or an inserted junk
line, or have a number replaced by nan, inf, 1e300, -0, a word, ...; JSON documents also get
values of another type, deleted keys and duplicated items; .npy files get truncated headers
and payloads, damaged bytes, edited dtype / shape / order, and replaced values; .npz archives
get container damage and changed or dropped members.

The mutations and the invariant live in tests/skeleton/mutations.py (`outcome()`): a
SkeletonFormatError naming the file (and its line or JSON path where the format has them),
or a record with finite float32 arrays of the documented shapes and `valid` in [0, 1];
anything else, or a case over CASE_TIME_LIMIT_S, fails. The per-parser counts (cases,
errors, valid files by mutation kind) are printed at the end of the pytest run.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import json
import pathlib
import sys

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from skel_llm import skeleton


def import_mutations():
  """tests/skeleton/mutations.py as a module (once per process)."""
  name = "skel_llm_test_mutations"
  if name not in sys.modules:
    spec = importlib.util.spec_from_file_location(
        name, pathlib.Path(__file__).resolve().parent / "mutations.py")
    sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[name])
  return sys.modules[name]


M = import_mutations()


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
# Examples per sample file: 1360 cases in all, 25-40 s on the shared 2-core development machine.
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
      entry["paths"] = M.json_paths(entry["doc"])
    elif kind == "npy":
      entry["arr"] = np.load(io.BytesIO(raw), allow_pickle=False)
    elif kind == "npz":
      with np.load(io.BytesIO(raw), allow_pickle=False) as z:
        entry["arrays"] = {k: z[k] for k in z.files}
    _CACHE[rel] = entry
  return _CACHE[rel]


def _mutation(data, entry: dict, kind: str) -> tuple[str, bytes]:
  if kind == "text":
    return M.mutate_text(data, entry["raw"], entry["lines"])
  if kind == "json":
    if data.draw(st.booleans(), label="structural"):
      return M.mutate_json(data, entry["doc"], entry["paths"])
    return M.mutate_text(data, entry["raw"], entry["lines"])
  if kind == "npy":
    return M.mutate_npy(data, entry["raw"], entry["arr"])
  return M.mutate_npz(data, entry["raw"], entry["arrays"])


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

  Each case goes through one of three entry points: `load(format=...)`, `load()` (format
  recognised from the name and content) or `load_all(format=...)` (PKU-MMD with a label file:
  its segments).

  Mutations a format cannot detect (they leave a well-formed file; counted as 'valid' in the
  tally printed at the end of the run, by mutation kind):
  - any number changed into another in-bound number: a changed digit (corrupt_byte), '-0',
    '1e-300', a changed .npy payload byte; every format.
  - NTU: two swapped joint lines (or any two lines with the same field count), the final empty
    line deleted, a number replaced inside the body ID (a text field).
  - PKU-MMD: one frame per line and no frame count, so deleted, duplicated and swapped frame
    lines and a truncation at a line end are all well-formed sequences.
  - BVH: swapped motion rows; a blank line inserted; a digit in a joint name.
  - Kinetics / COCO / NW-UCLA JSON: a deleted or duplicated person, image or annotation, a
    deleted optional key (label, label_index, file_name, id, width and height), a value of
    another type in a field the parser does not read (COCO info, licenses, bbox, area,
    segmentation), a number or word replaced inside a string, whitespace.
  - .npy / .npz: fortran_order flipped (a transposed array of the same shape), a member cast
    to another numeric dtype, a dropped optional .npz member (part, center, scale, imgname).
  """
  entry = _sample(shared_data / "real", rel, kind)
  name = rel.split("/")[-1]
  folder = case_dir / request.node.callspec.id.replace(":", "_").replace("/", "_")
  folder.mkdir(exist_ok=True)
  path = folder / name
  all_kwargs = {}
  if parser == "pku_mmd":  # load_all cuts the labelled segments (the last one ends at frame T)
    all_kwargs["label_path"] = folder / "labels.txt"
    all_kwargs["label_path"].write_text("1,10,70,1\n14,100,180,2\n51,900,1040,1\n")
  tally = fuzz_tally.setdefault(parser, collections.Counter())
  kinds = fuzz_tally.setdefault(f"{parser} valid by kind", collections.Counter())

  @hypothesis.settings(max_examples=MAX_EXAMPLES[kind] * M.FUZZ_SCALE,
                       derandomize=M.DERANDOMIZE, deadline=None, database=None, print_blob=True,
                       suppress_health_check=list(hypothesis.HealthCheck))
  @hypothesis.given(data=st.data())
  def case(data):
    mutation, content = _mutation(data, entry, kind)
    path.write_bytes(content)
    # The three entry points: the named parser, format recognition, all clips of the file.
    how = data.draw(st.sampled_from(("load", "detect", "load_all")), label="entry point")
    call = {"load": lambda: skeleton.load(path, format=fmt),
            "detect": lambda: skeleton.load(path),
            "load_all": lambda: skeleton.load_all(path, format=fmt, **all_kwargs)}[how]
    result = M.outcome(call, str(path), joints=None if how == "detect" else joints,
                       lines=lines)
    tally["cases"] += 1
    tally[result] += 1
    if result == "valid":
      kinds[mutation] += 1

  case()


# Label and caption files: the test writes them (no real one is in ../shared/data).
LABEL_TEXT = b"1,10,70,1\n14,100,180,2\n51,900,1040,1\n"
CAPTION_TEXT = (b"a person serves a tennis ball.#a/DET person/NOUN serve/VERB#0.0#0.0\n"
                b"someone tosses a ball up and swings overhead.#someone/PRON toss/VERB#1.0#5.5\n"
                b"a man walks.#a/DET man/NOUN walk/VERB#nan#nan\n")


@pytest.mark.parametrize("which", ["pku_mmd labels", "humanml3d captions"])
def test_mutated_label_and_caption_files(which, case_dir, fuzz_tally):
  """A mutated PKU-MMD label file or HumanML3D caption file raises a SkeletonFormatError naming
  the file and line, or reads as entries with finite, ordered, in-bound numbers.

  Undetectable: a changed digit, a deleted, duplicated or swapped line (one entry per line),
  an inserted blank line, a word inside a caption.
  """
  raw = LABEL_TEXT if which.startswith("pku") else CAPTION_TEXT
  path = case_dir / ("A10N08-L.txt" if which.startswith("pku") else "012314.txt")
  tally = fuzz_tally.setdefault(which, collections.Counter())
  kinds = fuzz_tally.setdefault(f"{which} valid by kind", collections.Counter())

  @hypothesis.settings(max_examples=80 * M.FUZZ_SCALE, derandomize=M.DERANDOMIZE, deadline=None, database=None,
                       suppress_health_check=list(hypothesis.HealthCheck))
  @hypothesis.given(data=st.data())
  def case(data):
    mutation, content = M.mutate_text(data, raw, raw.split(b"\n"))
    path.write_bytes(content)
    tally["cases"] += 1
    try:
      if which.startswith("pku"):
        entries = skeleton.read_labels(path, num_frames=1040)
        for e in entries:
          assert 0 <= e["start"] < e["end"] <= 1040 and 0 <= e["label"] < 51
          assert np.isfinite(np.float32(e["confidence"]))
      else:
        entries = skeleton.read_captions(path)
        for e in entries:
          assert isinstance(e["caption"], str) and 0 <= e["start"] and 0 <= e["end"]
          assert np.isfinite(np.float32([e["start"], e["end"]])).all()
    except skeleton.SkeletonFormatError as e:
      assert str(path) in str(e) and e.where is not None, str(e)
      tally["error"] += 1
      return
    assert entries
    tally["valid"] += 1
    kinds[mutation.split(":")[0]] += 1

  case()
