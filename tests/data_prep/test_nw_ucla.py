"""`nw_ucla` builds from per-sample JSON files the test writes (no real sample is available)."""

import json

import numpy as np
import pytest

from data_prep import common
from skel_llm.data import classnames


def _ucla_json(path, name, label, frames):
  path.write_text(json.dumps({"file_name": name, "skeletons": frames.tolist(), "label": label}))


def test_nw_ucla_cross_view_from_written_fixtures(tmp_path, tfds_build, tfds_read):
  from data_prep.nw_ucla import nw_ucla_dataset_builder as b

  rng = np.random.default_rng(0)
  manual = tmp_path / "all_sqe"
  manual.mkdir()
  clips = {"a01_s01_e00_v01": 1, "a11_s02_e01_v02": 9, "a12_s03_e02_v03": 10}
  frames = {n: rng.normal(size=(5 + i, 20, 3)).round(4) for i, n in enumerate(clips)}
  for n, label in clips.items():
    _ucla_json(manual / f"{n}.json", n, label, frames[n])
  tfds_build(b.Builder, tmp_path / "dd", manual, "xview")
  train = tfds_read("nw_ucla/xview", tmp_path / "dd", "train")
  test = tfds_read("nw_ucla/xview", tmp_path / "dd", "test")
  assert sorted(train) == ["a01_s01_e00_v01", "a11_s02_e01_v02"] and list(test) == [
      "a12_s03_e02_v03"]
  assert int(train["a11_s02_e01_v02"]["label"]) == 8  # action a11 is "throw"
  assert classnames.NW_UCLA_CLASSES[int(test["a12_s03_e02_v03"]["label"])] == "carry"
  for n, ex in {**train, **test}.items():
    positions, _ = common.decode(ex)
    np.testing.assert_allclose(positions[:, 0], frames[n], atol=1e-6)
    assert common.text(ex["format"]) == "kinect20"
  tfds_build(b.Builder, tmp_path / "dd1", manual, "xview_v1")
  assert list(tfds_read("nw_ucla/xview_v1", tmp_path / "dd1", "test")) == ["a01_s01_e00_v01"]
  _ucla_json(manual / "a02_s01_e00_v01.json", "a02_s01_e00_v01", 5, frames["a01_s01_e00_v01"])
  with pytest.raises(ValueError, match="disagrees with action id a02"):
    tfds_build(b.Builder, tmp_path / "dd2", manual, "xview")
