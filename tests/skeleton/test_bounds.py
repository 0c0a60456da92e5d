"""Values are checked as returned (float32) and against per-format physical bounds (issue 12).

The regression: a coordinate written as 1e300 is a finite float64 that becomes inf in
float32; before the fix NTU, PKU-MMD and BVH (and the JSON / .npy parsers) loaded it.
Each parser gets the real sample with one value replaced by 1e300 and must name the file,
the line (or JSON path / array) and the value.
"""

import json

import numpy as np
import pytest

from skel_llm import skeleton
from skel_llm.skeleton import SkeletonFormatError, bounds


def _raises(path, *words, **kwargs):
  with pytest.raises(SkeletonFormatError) as err:
    skeleton.load(path, **kwargs)
  msg = str(err.value)
  assert str(path) in msg, msg
  for w in words:
    assert w in msg, msg
  return err.value


def _replace_token(text: str, line: int, field: int, value: str) -> str:
  """`text` with token `field` (1-based) of line `line` (1-based) replaced."""
  lines = text.split("\n")
  tokens = lines[line - 1].split()
  tokens[field - 1] = value
  lines[line - 1] = " ".join(tokens)
  return "\n".join(lines)


def _copy_text(src, dst, line, field, value):
  dst.write_text(_replace_token(src.read_text(), line, field, value))
  return dst


def _save_npy(path, arr):
  np.save(path, arr, allow_pickle=False)
  return path


@pytest.fixture
def real(shared_data):
  return shared_data / "real"


def test_ntu_1e300(real, tmp_path):
  # Line 5 is the first joint line (frame count, body count, body header, joint count).
  p = _copy_text(real / "ntu_skeleton/S001C001P001R001A001.skeleton",
                 tmp_path / "S001C001P001R001A001.skeleton", 5, 3, "1e300")
  e = _raises(p, "line 5:", "field 3 (z)", "1e+300", "max_abs=")
  assert e.where == 5


def test_ntu_1e300_in_a_field_the_record_does_not_keep(real, tmp_path):
  p = _copy_text(real / "ntu_skeleton/S001C001P001R001A001.skeleton",
                 tmp_path / "S001C001P001R001A001.skeleton", 9, 6, "1e300")
  _raises(p, "line 9:", "field 6 (colorX)", "1e+300")
  p = _copy_text(real / "ntu_skeleton/S001C001P001R001A001.skeleton",
                 tmp_path / "S001C001P001R001A001.skeleton", 3, 8, "1e300")
  _raises(p, "line 3:", "field 8 (leanX)", "1e+300")


def test_pku_mmd_1e300(real, tmp_path):
  p = _copy_text(real / "pku_mmd/A10N08-L.txt", tmp_path / "A10N08-L.txt", 7, 2, "1e300")
  _raises(p, "line 7:", "field 2", "1e+300")


def test_bvh_1e300(real, tmp_path):
  src = real / "bvh/131_01.bvh"
  first = src.read_text().split("\n").index("MOTION") + 4  # after 'Frames:' and 'Frame Time:'
  p = _copy_text(src, tmp_path / "131_01.bvh", first + 2, 1, "1e300")
  _raises(p, f"line {first + 2}:", "field 1 (", "position", "1e+300")
  p = _copy_text(src, tmp_path / "131_01.bvh", first, 4, "1e300")
  _raises(p, f"line {first}:", "field 4 (", "rotation", "1e+300", "max_angle=")


def _kinetics_doc(real):
  return json.loads((real / "kinetics_skeleton/__NrybzYzUg.json").read_text())


def test_kinetics_1e300(real, tmp_path):
  doc = _kinetics_doc(real)
  k = next(i for i, f in enumerate(doc["data"]) if f["skeleton"])
  doc["data"][k]["skeleton"][0]["pose"][3] = 1e300
  p = tmp_path / "__NrybzYzUg.json"
  p.write_text(json.dumps(doc))
  _raises(p, f"$.data[{k}].skeleton[0].pose[3]:", "1e+300")


def test_coco_1e300(real, tmp_path):
  doc = json.loads((real / "coco17/test_coco.json").read_text())
  doc["annotations"][0]["keypoints"][1] = 1e300
  p = tmp_path / "test_coco.json"
  p.write_text(json.dumps(doc))
  _raises(p, "$.annotations[0].keypoints[1]:", "y:", "1e+300")


def test_nw_ucla_1e300(tmp_path):
  frames = np.full((4, 20, 3), 0.5).tolist()
  frames[2][7][1] = 1e300
  p = tmp_path / "a01_s01_e00_v01.json"
  p.write_text(json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": frames, "label": 1}))
  _raises(p, "$.skeletons[2][7][1]:", "1e+300")


def test_humanml3d_1e300(real, tmp_path):
  arr = np.load(real / "humanml3d/new_joints/012314.npy").astype(np.float64)
  arr[3, 4, 2] = 1e300
  (tmp_path / "new_joints").mkdir()
  p = _save_npy(tmp_path / "new_joints/012314.npy", arr)
  _raises(p, "array: index [3, 4, 2]:", "1e+300")


def test_humanml3d_vecs_1e300(real, tmp_path):
  arr = np.load(real / "humanml3d/new_joint_vecs/012314.npy").astype(np.float64)
  arr[5, 3] = 1e300  # root height
  (tmp_path / "new_joint_vecs").mkdir()
  p = _save_npy(tmp_path / "new_joint_vecs/012314.npy", arr)
  _raises(p, "array: index [5, 3]:", "feature 1e+300")


def test_humanml3d_vecs_bounded_features_that_walk_too_far(real, tmp_path):
  # Every feature within bounds, but a root speed of 90 m/frame puts the body km away.
  arr = np.load(real / "humanml3d/new_joint_vecs/012314.npy")
  arr[:, 1] = 90.0
  p = _save_npy(tmp_path / "012314.npy", arr)
  _raises(p, "recovered coordinate", format="humanml3d_vecs")


def test_h36m_1e300(real, tmp_path):
  with np.load(real / "h36m/test_h36m_body3d.npz") as z:
    data = {k: z[k] for k in z.files}
  data["S"][1, 2, 0] = 1e300
  p = tmp_path / "test_h36m_body3d.npz"
  np.savez(p, **data)
  _raises(p, "S: index [1, 2, 0]:", "1e+300")
  arr = np.load(real / "h36m/test_h36m_2d_detection.npy")
  arr[0, 1, 0] = 1e300
  _raises(_save_npy(tmp_path / "test_h36m_2d_detection.npy", arr), "array: index [0, 1, 0]:",
          "1e+300")


def test_the_check_runs_after_the_float32_cast(real, tmp_path):
  # With the bound lifted, 1e300 still cannot become a float32 coordinate.
  p = _copy_text(real / "pku_mmd/A10N08-L.txt", tmp_path / "A10N08-L.txt", 1, 1, "1e300")
  _raises(p, "line 1:", "not a finite float32", max_abs=np.inf)
  p = _copy_text(real / "pku_mmd/A10N08-L.txt", tmp_path / "A10N08-L.txt", 1, 1, "3.5e38")
  _raises(p, "line 1:", "not a finite float32", max_abs=np.inf)  # float32 ends at 3.4028e38


def test_bounds_are_overridable_for_unusual_data(real, tmp_path):
  # 150 m is beyond the metric bound but loads when the caller says so.
  p = _copy_text(real / "ntu_skeleton/S001C001P001R001A001.skeleton",
                 tmp_path / "S001C001P001R001A001.skeleton", 5, 1, "150")
  _raises(p, "line 5:", "150 is outside [-100, 100]")
  assert skeleton.load(p, max_abs=200.0).positions[0, 0, 0, 0] == 150.0
  # COCO: 3 image widths to the right is refused by default, accepted with a wider margin.
  doc = json.loads((real / "coco17/test_coco.json").read_text())
  width = doc["images"][0]["width"]
  ann = next(k for k, a in enumerate(doc["annotations"]) if a["image_id"] == doc["images"][0]["id"])
  doc["annotations"][ann]["keypoints"][0] = 3 * width
  q = tmp_path / "test_coco.json"
  q.write_text(json.dumps(doc))
  _raises(q, f"$.annotations[{ann}].keypoints[0]:", f"outside [-{width}, {2 * width}]")
  assert skeleton.load(q, image_margin=3.0).positions.max() == 3 * width
  # BVH: a rotation of 50000 degrees needs max_angle=.
  src = real / "bvh/131_01.bvh"
  first = src.read_text().split("\n").index("MOTION") + 4
  r = _copy_text(src, tmp_path / "131_01.bvh", first, 4, "50000")
  _raises(r, "outside [-36000, 36000]")
  assert skeleton.load(r, max_angle=1e5).num_frames > 0


def test_confidences_must_lie_in_0_1(real, tmp_path):
  doc = _kinetics_doc(real)
  k = next(i for i, f in enumerate(doc["data"]) if f["skeleton"])
  doc["data"][k]["skeleton"][0]["score"][2] = 1.5
  p = tmp_path / "__NrybzYzUg.json"
  p.write_text(json.dumps(doc))
  _raises(p, f"$.data[{k}].skeleton[0].score[2]:", "confidence 1.5 is outside [0, 1]")
  with np.load(real / "h36m/test_h36m_body3d.npz") as z:
    data = {k: z[k] for k in z.files}
  data["S"][0, 0, 3] = 2.0  # was clipped to 1 before
  q = tmp_path / "test_h36m_body3d.npz"
  np.savez(q, **data)
  _raises(q, "confidence 2 is outside [0, 1]")


def test_json_strings_and_booleans_are_not_numbers(tmp_path):
  frames = np.full((2, 20, 3), 0.5).tolist()
  frames[1][3][0] = "0.5"  # np.asarray(..., float) would have converted it
  p = tmp_path / "a01_s01_e00_v01.json"
  p.write_text(json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": frames}))
  _raises(p, "$.skeletons[1][3][0]:", "expected a number", "got str")
  frames[1][3][0] = True
  p.write_text(json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": frames}))
  _raises(p, "$.skeletons[1][3][0]:", "got bool")
  frames[1][3][0] = 10 ** 400
  p.write_text(json.dumps({"file_name": "a01_s01_e00_v01", "skeletons": frames}))
  _raises(p, "$.skeletons[1][3][0]:", "too large")


def test_npy_header_and_payload_are_checked_before_loading(real, tmp_path):
  raw = (real / "humanml3d/new_joints/012314.npy").read_bytes()
  (tmp_path / "short.npy").write_bytes(raw[:-4])
  _raises(tmp_path / "short.npy", "payload:", "promises 44880 payload bytes, the file holds 44876",
          format="humanml3d")
  (tmp_path / "long.npy").write_bytes(raw + b"\0" * 4)
  _raises(tmp_path / "long.npy", "payload:", "the file holds 44884", format="humanml3d")
  # A header promising 10^12 frames must not allocate them.
  head = raw[:128].decode("latin1").replace("(170, 22, 3)", "(1000000000000, 22, 3)")
  head = head.replace(" " * 10 + "\n", "\n")  # same header length
  assert len(head) == 128
  (tmp_path / "huge.npy").write_bytes(head.encode("latin1") + raw[128:])
  _raises(tmp_path / "huge.npy", "payload:", format="humanml3d")
  bad = bytearray(raw)
  bad[20] = ord("(")  # breaks the header's Python literal (numpy raised tokenize.TokenError)
  (tmp_path / "syntax.npy").write_bytes(bytes(bad))
  _raises(tmp_path / "syntax.npy", "header:", format="humanml3d")


def test_npz_container_damage_is_a_format_error(real, tmp_path):
  raw = (real / "h36m/test_h36m_body3d.npz").read_bytes()
  (tmp_path / "cut.npz").write_bytes(raw[:len(raw) // 2])
  _raises(tmp_path / "cut.npz", "expected an .npz of plain arrays")


def test_the_real_samples_are_inside_every_bound(real):
  for rel in ("ntu_skeleton/S001C003P008R002A058.skeleton", "pku_mmd/A10N08-L.txt",
              "bvh/test_mocapbank.bvh", "coco17/test_coco.json", "h36m/test_h36m_body3d.npz",
              "kinetics_skeleton/__PYrzYbzKE.json", "humanml3d/new_joint_vecs/012314.npy"):
    rec = skeleton.load(real / rel)
    assert np.isfinite(rec.positions).all()
  assert bounds.METRIC_MAX_ABS == 100.0 and bounds.BVH_MAX_ANGLE == 36000.0


def test_bounds_module_table_matches_the_constants():
  doc = bounds.__doc__
  for text in ("abs <= 100 m", "abs <= 1e5", "abs <= 36000", "1e-4 .. 10", "-1 .. 2",
               "1000 x 1002"):
    assert text in doc, text
  assert bounds.BVH_FRAME_TIME == (1e-4, 10.0) and bounds.H36M_IMAGE_SIZE == (1000.0, 1002.0)
  assert bounds.IMAGE_MARGIN == 1.0 and bounds.BVH_MAX_ABS == 1e5
