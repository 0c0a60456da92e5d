"""Every malformed input raises SkeletonFormatError naming the file, the line / JSON path and
what was expected."""

import json

import numpy as np
import pytest

from skel_llm import skeleton
from skel_llm.skeleton.errors import SkeletonFormatError


def _ntu_lines(frames=3, bodies=1):
  out = [str(frames)]
  for _ in range(frames):
    out.append(str(bodies))
    for b in range(bodies):
      out += [f"7200000000000000{b} 0 1 1 1 1 0 0.01 -0.2 2", "25"]
      out += [f"0.{j:02d} 0.5 3.1 250 200 900 500 0.1 0.2 0.3 0.4 2" for j in range(25)]
  return out


def _raises(path, where, *more, **kwargs):
  with pytest.raises(SkeletonFormatError) as err:
    skeleton.load(path, **kwargs)
  msg = str(err.value)
  assert str(path) in msg, msg
  # "line 8" must not match "line 80": line numbers are followed by ':'.
  assert (f"{where}:" if where.split()[-1].isdigit() else where) in msg, msg
  for m in more:
    assert m in msg, msg
  return msg


def _edit(lines, k, new):
  lines = list(lines)
  lines[k] = new
  return lines


# (case, lines, expected "where", expected words); NTU line numbers are 1-based:
# 1 frames, 2 bodies, 3 header, 4 joint count, 5..29 joints of frame 1, 30 bodies of frame 2 ...
NTU_CASES = [
    ("empty", [], "line 1", "empty file"),
    ("truncated", _ntu_lines()[:40], "line 41", "file ends early"),
    ("truncated_in_joint_block", _ntu_lines()[:20], "line 21", "25 joint lines"),
    ("wrong_joint_count", _edit(_ntu_lines(), 3, "24"), "line 4", "expected 25 joints"),
    ("wrong_value_count", _edit(_ntu_lines(), 10, "0.1 0.5 3.1 250 200 900 500 0.1 0.2 0.3 0.4"),
     "line 11", "expected 12 numbers, got 11"),
    ("one_short_one_long", _edit(_edit(_ntu_lines(), 10, "0.1 0.5 3.1 250 200 900 500 0.1 0.2 0.3 "
                                       "0.4"), 11, "0.1 0.5 3.1 250 200 900 500 0.1 0.2 0.3 0.4 2 2"),
     "line 11", "expected 12 numbers"),
    ("non_numeric", _edit(_ntu_lines(), 12, "0.1 0.5 abc 250 200 900 500 0.1 0.2 0.3 0.4 2"),
     "line 13", "field 3: expected a number, got 'abc'"),
    ("nan", _edit(_ntu_lines(), 33, "0.1 nan 3 250 200 900 500 0.1 0.2 0.3 0.4 2"), "line 34",
     "finite"),
    ("inf", _edit(_ntu_lines(), 33, "0.1 0.2 -inf 250 200 900 500 0.1 0.2 0.3 0.4 2"), "line 34",
     "finite"),
    ("bad_frame_count", _edit(_ntu_lines(), 0, "three"), "line 1", "frame count"),
    ("bad_body_count", _edit(_ntu_lines(), 1, "1 2"), "line 2", "body count"),
    ("short_body_header", _edit(_ntu_lines(), 2, "72 0 1 1"), "line 3",
     "expected 9 body header numbers after the body ID, got 3"),
    ("body_header_text", _edit(_ntu_lines(), 2, "72 0 1 1 1 1 0 0.01 -0.2 two"), "line 3",
     "field 9: expected a number, got 'two'"),
    ("trailing_data", _ntu_lines() + ["1"], "line 86", "expected end of file"),
]


@pytest.mark.parametrize("case,lines,where,words", NTU_CASES, ids=[c[0] for c in NTU_CASES])
def test_ntu_malformed(tmp_path, case, lines, where, words):
  p = tmp_path / f"S001C001P001R001A001_{case}.skeleton"
  p.write_text("\r\n".join(lines) + ("\r\n" if lines else ""))
  _raises(p, where, words)


def test_ntu_valid_fixture_parses(tmp_path):
  p = tmp_path / "S001C001P001R001A001.skeleton"
  p.write_text("\n".join(_ntu_lines()) + "\n")
  assert skeleton.load(p).positions.shape == (3, 1, 25, 3)


def _pku_rows(t=5):
  return [" ".join(f"{0.1 * (j % 7):.6f}" for j in range(150)) for _ in range(t)]


@pytest.mark.parametrize("case,lines,where,words", [
    ("empty", [], "line 1", "empty file"),
    ("wrong_value_count", _edit(_pku_rows(), 2, " ".join(["0.5"] * 149)), "line 3",
     "expected 150 numbers, got 149"),
    ("non_numeric", _edit(_pku_rows(), 3, " ".join(["0.5"] * 149 + ["x1"])), "line 4",
     "field 150: expected a number"),
    ("nan", _edit(_pku_rows(), 1, " ".join(["0.5"] * 10 + ["NaN"] + ["1"] * 139)), "line 2",
     "finite"),
    ("blank_line_inside", _edit(_pku_rows(), 2, ""), "line 3", "expected 150 numbers, got 0"),
], ids=lambda x: x if isinstance(x, str) and " " not in x and len(x) < 30 else None)
def test_pku_malformed(tmp_path, case, lines, where, words):
  p = tmp_path / f"{case}.txt"
  p.write_text("\n".join(lines))
  _raises(p, where, words, format="pku_mmd")


@pytest.mark.parametrize("case,labels,where,words", [
    ("end_past_file", "3,0,4,1\n5,2,9,1\n", "line 2", "past the 5 frames of"),
    ("start_after_end", "3,4,2,1\n", "line 1", "0 <= start < end"),
    ("label_out_of_range", "3,0,2,1\n52,2,3,1\n", "line 2", "label in 1..51"),
    ("field_count", "3,0,2\n", "line 1", "4 comma-separated fields"),
    ("non_numeric", "walk,0,2,1\n", "line 1", "expected integers"),
    ("empty", "", "line 1", "empty label file"),
])
def test_pku_label_ranges(tmp_path, case, labels, where, words):
  data = tmp_path / "seq.txt"
  data.write_text("\n".join(_pku_rows()) + "\n")
  lab = tmp_path / f"labels_{case}.txt"
  lab.write_text(labels)
  with pytest.raises(SkeletonFormatError) as err:
    skeleton.load_all(data, label_path=lab)
  msg = str(err.value)
  assert str(lab) in msg and f"{where}:" in msg and words in msg, msg


def _kinetics(frames=3):
  person = {"pose": [0.5] * 36, "score": [0.9] * 18}
  return {"data": [{"frame_index": f + 1, "skeleton": [dict(person)]} for f in range(frames)],
          "label": "abseiling", "label_index": 0}


def _mutate(doc, fn):
  doc = json.loads(json.dumps(doc))
  fn(doc)
  return doc


@pytest.mark.parametrize("case,doc,where,words", [
    ("short_pose", _mutate(_kinetics(), lambda d: d["data"][1]["skeleton"][0].update(
        pose=[0.5] * 34)), "$.data[1].skeleton[0].pose", "expected shape (36,), got (34,)"),
    ("non_numeric_score", _mutate(_kinetics(), lambda d: d["data"][2]["skeleton"][0]["score"]
                                  .__setitem__(4, "high")), "$.data[2].skeleton[0].score[4]",
     "expected a number"),
    ("missing_key", _mutate(_kinetics(), lambda d: d["data"][0].pop("skeleton")), "$.data[0]",
     "expected key 'skeleton'"),
    ("duplicate_frame", _mutate(_kinetics(), lambda d: d["data"][2].update(frame_index=2)),
     "$.data[2].frame_index", "appears twice"),
    ("frame_out_of_range", _mutate(_kinetics(), lambda d: d["data"][2].update(frame_index=7)),
     "$.data[2].frame_index", "frame index in 1..3"),
    ("no_frames", _mutate(_kinetics(), lambda d: d.update(data=[])), "$.data", "at least one"),
])
def test_kinetics_malformed(tmp_path, case, doc, where, words):
  p = tmp_path / f"{case}.json"
  p.write_text(json.dumps(doc))
  _raises(p, where, words)


def test_json_nan_truncation_and_layout(tmp_path):
  doc = _kinetics()
  text = json.dumps(doc).replace("0.9", "NaN", 1)
  p = tmp_path / "nan.json"
  p.write_text(text)
  _raises(p, "$.data[0].skeleton[0].score[0]", "finite JSON number", "NaN")
  t = tmp_path / "truncated.json"
  t.write_text(json.dumps(doc, indent=1)[:200])
  _raises(t, "line", "expected valid JSON")
  e = tmp_path / "empty.json"
  e.write_text("")
  _raises(e, "line 1", "empty file")
  u = tmp_path / "other.json"
  u.write_text(json.dumps({"frames": []}))
  _raises(u, "$", "unknown JSON skeleton layout")


def test_nw_ucla_wrong_joint_count(tmp_path):
  frames = np.zeros((4, 20, 3)).tolist()
  frames[2] = frames[2][:19]
  p = tmp_path / "a01_s01_e00_v01.json"
  p.write_text(json.dumps({"skeletons": frames}))
  _raises(p, "$.skeletons[2]", "expected 20 joints, got 19")
  frames[2] = np.zeros((20, 3)).tolist()
  frames[3][5] = [0.0, 1.0]
  p.write_text(json.dumps({"skeletons": frames}))
  _raises(p, "$.skeletons[3][5]", "expected [x, y, z]")


def test_coco_wrong_keypoint_count_and_unknown_image(tmp_path):
  doc = {"images": [{"id": 1}], "annotations": [
      {"image_id": 1, "category_id": 1, "id": 5, "keypoints": [1, 2, 2] * 17}]}
  p = tmp_path / "coco.json"
  p.write_text(json.dumps(_mutate(doc, lambda d: d["annotations"][0].update(keypoints=[1] * 50))))
  _raises(p, "$.annotations[0].keypoints", "expected shape (51,)")
  p.write_text(json.dumps(_mutate(doc, lambda d: d["annotations"][0].update(image_id=9))))
  _raises(p, "$.annotations[0].image_id", "not in $.images")
  p.write_text(json.dumps(doc))
  assert skeleton.load(p).positions.shape == (1, 1, 17, 3)


def test_humanml3d_and_h36m_arrays(tmp_path):
  p = tmp_path / "000001.npy"
  np.save(p, np.zeros((10, 21, 3), np.float32))
  _raises(p, "shape", "[T, 22, 3]")  # not recognised as HumanML3D
  _raises(p, "array", "expected shape (-1, 22, 3), got (10, 21, 3)", format="humanml3d")
  bad = np.zeros((10, 22, 3), np.float32)
  bad[4, 7, 1] = np.inf
  np.save(p, bad)
  _raises(p, "array", "finite", "(4, 7, 1)")
  z = tmp_path / "h36m.npz"
  np.savez(z, S=np.zeros((2, 16, 4)))
  _raises(z, "S", "expected shape (-1, 17, 4)")


def _bvh(rows=("0 0 0 10 20 30 5", "0 0 0 10 20 30 5"), frames=2, channels="Zrotation Xrotation "
         "Yrotation", offset="0 1 0"):
  return ("HIERARCHY\nROOT Hips\n{\n\tOFFSET 0 0 0\n\tCHANNELS 6 Xposition Yposition Zposition "
          f"{channels}\n\tJOINT Chest\n\t{{\n\t\tOFFSET {offset}\n\t\tCHANNELS 1 Xrotation\n"
          "\t\tEnd Site\n\t\t{\n\t\t\tOFFSET 0 1 0\n\t\t}\n\t}\n}\n"
          f"MOTION\nFrames: {frames}\nFrame Time: 0.0333333\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("case,text,where,words", [
    ("empty", "", "line 1", "empty file"),
    ("wrong_value_count", _bvh(rows=("0 0 0 10 20 30 5", "0 0 0 10 20 30")), "line 20",
     "expected 7 numbers, got 6"),
    ("non_numeric", _bvh(rows=("0 0 0 10 20 30 5", "0 0 0 10 x 30 5")), "line 20",
     "field 5: expected a number"),
    ("nan", _bvh(rows=("0 0 0 10 nan 30 5", "0 0 0 10 20 30 5")), "line 19", "finite"),
    ("frames_mismatch", _bvh(frames=3), "line 21", "'Frames: 3' but the file has 2"),
    ("bad_channel", _bvh(channels="Zrotation Xrotation Wrotation"), "line 5",
     "got 'Wrotation'"),
    ("bad_offset", _bvh(offset="0 one 0"), "line 8", "OFFSET y"),
    ("truncated", _bvh()[:60], "line", "expected a 'MOTION' line"),
    ("truncated_hierarchy", _bvh().split("\t}\n}\n")[0] + "\nMOTION\n", "line 14",
     "hierarchy ends early"),
], ids=lambda x: x if isinstance(x, str) and len(x) < 25 and "\n" not in x else "")
def test_bvh_malformed(tmp_path, case, text, where, words):
  p = tmp_path / f"{case}.bvh"
  p.write_text(text)
  _raises(p, where, words)


def test_bvh_valid_fixture_parses(tmp_path):
  p = tmp_path / "ok.bvh"
  p.write_text(_bvh())
  rec = skeleton.load(p)
  assert rec.positions.shape == (2, 1, 3, 3) and abs(rec.fps - 30.0) < 1e-3


def test_unknown_format(tmp_path):
  p = tmp_path / "motion.c3d"
  p.write_bytes(b"\x00\x01")
  _raises(p, "unknown skeleton file type '.c3d'")
  t = tmp_path / "notes.txt"
  t.write_text("hello world\n")
  _raises(t, "line 1", "unknown text skeleton format")
  _raises(t, "unknown format 'openpose25'", format="openpose25")
  _raises(tmp_path / "absent.skeleton", "no such file")
