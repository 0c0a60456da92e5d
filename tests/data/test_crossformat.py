"""Pins skel_llm/data/crossformat.py: the named protocols' sources, class mappings and 2D view."""

import json
import os
import shutil

import ml_collections
import numpy as np
import pytest

from skel_llm.data import classnames, crossformat, sources
from skel_llm.eval import data as eval_data
from skel_llm.render import camera, checkpoint
from skel_llm.skeleton import topology
from skel_llm.train import defaults


def _eval_cfg(**overrides):
  """The demo's data config with an evaluator's overrides applied (as `EvalData` does)."""
  return eval_data.data_config(defaults.base(None).data, overrides, num_clips=8, prompt="mqa")


def test_every_protocol_maps_every_target_class():
  for name in crossformat.names():
    proto = crossformat.get(name)
    if proto.classes:
      asked = proto.asked_names()
      assert len(asked) == len(proto.classes) == len(set(asked)), name
  ucla = crossformat.get("ntu60_to_nwucla").asked_names()
  assert ucla[classnames.NW_UCLA_CLASSES.index("donning")] == "wear jacket"
  assert set(ucla) - set(classnames.NTU60_CLASSES) == {  # the rest keep NW-UCLA's wording
      "pick up with one hand", "pick up with two hands", "drop trash", "walk around",
      "carry an object"}


def test_a_mapping_that_misses_a_class_is_refused_naming_it():
  proto = crossformat.get("ntu60_to_nwucla")
  short = crossformat.CrossFormat(proto.name, proto.trained_on, proto.target, proto.topology,
                                  classes=proto.classes, mapping=proto.mapping[:-1])
  with pytest.raises(ValueError, match=r"ntu60_to_nwucla: the class mapping misses \['carry'\]"):
    short.asked_names()
  with pytest.raises(ValueError, match="cross-format protocol 'ntu_to_ucla' is unknown"):
    crossformat.get("ntu_to_ucla")


def test_protocol_fills_the_evaluators_target_unless_it_sets_it():
  d = _eval_cfg(crossformat="ntu60_to_nwucla")
  assert (d.source, d.tfds_name, d.eval_split, d.topology) == (
      "tfds", "nw_ucla/xview", "test", "kinect20")
  d = _eval_cfg(crossformat="humanml3d_to_ntu60_2d", tfds_name="ntu_rgbd/ntu60_xview")
  assert (d.tfds_name, d.topology) == ("ntu_rgbd/ntu60_xview", "coco17")
  run = ml_collections.ConfigDict(dict(source="tfds", tfds_name="ntu_rgbd/ntu60_xsub"))
  with pytest.raises(ValueError, match="trained on humanml3d.*'ntu_rgbd/ntu60_xsub'"):
    crossformat.check_trained_on(crossformat.get("humanml3d_to_nwucla"), run)
  crossformat.check_trained_on(crossformat.get("ntu60_to_nwucla"), run)


def test_ntu_in_2d_is_the_pinhole_projection_with_coco_names(shared_data):
  from skel_llm import skeleton
  rec = skeleton.load(shared_data / "real/ntu_skeleton/S001C001P001R001A001.skeleton")
  ntu = topology.get("ntu25")
  coco = topology.get("coco17")
  uv = crossformat.ntu_to_coco2d(rec.positions)
  assert uv.shape == rec.positions.shape[:2] + (17, 3) and (uv[..., 2] == 0).all()
  f = 480 / (2 * np.tan(np.radians(30)))
  x, y, z = rec.positions[0, 0, ntu.joint_names.index("left_wrist")]
  np.testing.assert_allclose(uv[0, 0, coco.joint_names.index("left_wrist"), :2],
                             [-f * x / z + 320, -f * y / z + 240], rtol=1e-5)
  head = uv[:, 0, coco.joint_names.index("nose")]
  for eye in ("left_eye", "right_eye", "left_ear", "right_ear"):
    np.testing.assert_array_equal(uv[:, 0, coco.joint_names.index(eye)], head)
  # The subject faces the sensor: as in a photo, their left shoulder is on the image's right,
  # their head above their ankles (v grows downwards).
  ls, rs = (uv[:, 0, coco.joint_names.index(n), 0] for n in ("left_shoulder", "right_shoulder"))
  assert (ls > rs).mean() > 0.95
  assert (head[:, 1] < uv[:, 0, coco.joint_names.index("left_ankle"), 1]).all()
  placed = camera.place(uv, "auto", "coco17")
  assert np.allclose(placed[..., 2][np.any(placed != 0, -1)], camera.DEPTH_M)


def test_nw_ucla_protocol_reads_the_build_with_the_mapped_names(tmp_path):
  """A tiny `nw_ucla/xview` build of synthetic Kinect-v1 clips (no real sample exists)."""
  import tensorflow_datasets as tfds

  from data_prep.nw_ucla import nw_ucla_dataset_builder as b
  from skel_llm.synthetic import generator
  manual = tmp_path / "all_sqe"
  manual.mkdir()
  names = {"a01_s01_e00_v03": 1, "a08_s02_e01_v03": 7, "a12_s03_e02_v03": 10,
           "a05_s01_e00_v01": 5}
  raw = {}
  for i, (n, label) in enumerate(names.items()):
    rec = generator.generate_clip("squat", i, num_frames=30, topology="kinect20")
    raw[n] = rec.positions[:, 0].round(5)
    (manual / f"{n}.json").write_text(json.dumps({"file_name": n, "label": label,
                                                  "skeletons": raw[n].tolist()}))
  builder = b.Builder(config="xview", data_dir=os.fspath(tmp_path / "dd"),
                      file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(manual)))
  d = _eval_cfg(crossformat="ntu60_to_nwucla", data_dir=os.fspath(tmp_path / "dd"))
  src = sources.make_source(d, "eval")
  assert src.class_names == crossformat.get("ntu60_to_nwucla").asked_names()
  assert len(src) == 3 and src.topology == "kinect20"  # view 3 is the test split
  got = {c.key.rsplit("/", 1)[1]: c for c in (src[i] for i in range(len(src)))}
  assert {n: src.class_names[c.label] for n, c in got.items()} == {
      "a01_s01_e00_v03": "pick up with one hand", "a08_s02_e01_v03": "wear jacket",
      "a12_s03_e02_v03": "carry an object"}
  for n, c in got.items():  # the Kinect rule: raw metres, in front of the camera
    np.testing.assert_allclose(c.positions[:, 0], raw[n], atol=1e-5)


def test_bvh_folder_protocol_labels_by_subfolder_and_registers_the_skeleton(shared_data,
                                                                           tmp_path):
  for cls, name in (("dance", "131_01.bvh"), ("walk", "131_03.bvh")):
    (tmp_path / cls).mkdir()
    shutil.copy(shared_data / "real/bvh" / name, tmp_path / cls / name)
  d = _eval_cfg(crossformat="bvh_folder", data_dir=os.fspath(tmp_path))
  src = sources.make_source(d, "eval")
  assert src.class_names == ["dance", "walk"] and [src[i].label for i in range(2)] == [0, 1]
  topo = topology.get(src.topology)  # registered under a name derived from its joints
  assert src.topology.startswith("bvh_") and topo.joint_names[0] == "Hips"
  clip = src[0]
  assert clip.positions.shape[2] == topo.num_joints
  assert abs(np.median(clip.positions[..., 2]) - camera.DEPTH_M) < 0.5  # normalised
  released = checkpoint.load_released(
      shared_data / "draction_reference/draction_candidate_01.safetensors")
  w = checkpoint.transfer_to(released, src.topology)  # the evaluator's transfer
  assert w["buffers"]["canonical_joints"].shape == (topo.num_joints, 3)
  (tmp_path / "other").mkdir()
  shutil.copy(shared_data / "real/bvh/test_mocapbank.bvh", tmp_path / "other" / "x.bvh")
  with pytest.raises(ValueError, match="differ from .*a BVH folder must hold one skeleton"):
    sources.make_source(d, "eval")
  with pytest.raises(FileNotFoundError, match="bvh_folder: data.data_dir .* is not a folder"):
    sources.make_source(_eval_cfg(crossformat="bvh_folder", data_dir="/nonexistent"), "eval")
