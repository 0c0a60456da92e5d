"""Every real sample file in ../shared/data/real against facts stated outside the code."""

import json

import numpy as np
import pytest

from skel_llm import skeleton
from skel_llm.skeleton import bvh, topology
from skel_llm.skeleton.errors import SkeletonFormatError

KINETICS = {  # from kinetics_skeleton/SOURCES.md: label, index, frames, empty, max persons/frame
    "__NrybzYzUg": ("abseiling", 0, 299, 234, 2), "__u6odV5hrI": ("parkour", 207, 299, 269, 2),
    "__vOysOPoCY": ("parkour", 207, 249, 82, 3), "__U_scuxNlQ": ("clay pottery making", 58, 299, 0, 2),
    "__PYrzYbzKE": ("jumpstyle dancing", 173, 299, 0, 11),
}


def test_pku_mmd_sequence_has_1040_frames_and_second_body_in_728(shared_data):
  rec = skeleton.load(shared_data / "real/pku_mmd/A10N08-L.txt")
  assert rec.format == "ntu25" and rec.positions.shape == (1040, 2, 25, 3)
  assert rec.metadata["bodies_present"].tolist() == [1040, 728]
  lines = (shared_data / "real/pku_mmd/A10N08-L.txt").read_text().splitlines()
  for t in (0, 1, 517, 1039):  # rows 2.. start with a blank: parsed all the same
    plain = np.array([float(v) for v in lines[t].split()], np.float32).reshape(2, 25, 3)
    assert np.array_equal(rec.positions[t], plain)
  assert np.all(rec.valid[:, 1].any(axis=1) == np.any(rec.positions[:, 1] != 0, axis=(1, 2)))


def test_pku_mmd_label_file_gives_one_clip_per_segment(shared_data, tmp_path):
  labels = tmp_path / "A10N08-L.txt"
  labels.write_text("3,0,120,1\n41,150,420,2\n12,500,1040,1\n")
  clips = skeleton.load_all(shared_data / "real/pku_mmd/A10N08-L.txt", label_path=labels)
  whole = skeleton.load(shared_data / "real/pku_mmd/A10N08-L.txt")
  assert [c.num_frames for c in clips] == [120, 270, 540]
  assert [c.metadata["label"] for c in clips] == [2, 40, 11]
  assert np.array_equal(clips[1].positions, whole.positions[150:420])


def test_kinetics_clips_keep_two_people_and_record_raw_counts(shared_data):
  d = shared_data / "real/kinetics_skeleton"
  val_labels = json.loads((d / "kinetics_val_label.json").read_text())
  for name, (label, index, frames, empty, most) in KINETICS.items():
    rec = skeleton.load(d / f"{name}.json")
    counts = rec.metadata["people_per_frame"]
    assert rec.format == "openpose18" and rec.is_2d and rec.num_frames == frames
    assert rec.metadata["label_name"] == label == val_labels[name]["label"]
    assert rec.metadata["label"] == index == val_labels[name]["label_index"]
    assert int((counts == 0).sum()) == empty and int(counts.max()) == most
    assert rec.num_persons == 2 and np.all(rec.positions[..., 2] == 0)
    assert np.all(rec.valid[counts == 0] == 0)  # empty frames kept, invalid
    assert np.all(rec.valid[counts == 1][:, 1] == 0)
  rec = skeleton.load(d / "__PYrzYbzKE.json")
  assert (rec.metadata["people_per_frame"] == 11).sum() == 1  # one frame with 11 people
  # The kept slot 0 is the most confident person of each frame.
  raw = json.loads((d / "__PYrzYbzKE.json").read_text())
  for frame in raw["data"][:20]:
    best = max(frame["skeleton"], key=lambda p: sum(p["score"]))
    np.testing.assert_array_equal(rec.valid[frame["frame_index"] - 1, 0], np.float32(best["score"]))


def test_humanml3d_clip_is_170_frames_of_22_joints(shared_data):
  rec = skeleton.load(shared_data / "real/humanml3d/new_joints/012314.npy")
  raw = np.load(shared_data / "real/humanml3d/new_joints/012314.npy")
  assert rec.format == "smpl22" and rec.fps == 20.0 and rec.positions.shape == (170, 1, 22, 3)
  assert np.array_equal(rec.positions[:, 0], raw)
  np.testing.assert_allclose(rec.positions[0, 0, 0], [0, 0.837, 0], atol=5e-4)
  assert rec.metadata["captions"] is None  # texts/ is not in the snapshot
  # y is up: the head is above the feet in every frame.
  head, feet = topology.SMPL22.index("head"), [10, 11]
  assert np.all(rec.positions[:, 0, head, 1] > rec.positions[:, 0, feet, 1].max(axis=1))


def test_humanml3d_features_give_back_the_released_joint_positions(shared_data):
  # HumanML3D's new_joints/ files are its recover_from_ric() of new_joint_vecs/ (float32 torch).
  vecs = skeleton.load(shared_data / "real/humanml3d/new_joint_vecs/012314.npy")
  joints = np.load(shared_data / "real/humanml3d/new_joints/012314.npy")
  assert vecs.format == "smpl22" and vecs.positions.shape == (170, 1, 22, 3)
  assert vecs.metadata["features"].shape == (170, 263)
  np.testing.assert_allclose(vecs.positions[:, 0], joints, rtol=0, atol=1e-6)


def test_humanml3d_captions_are_read_from_texts(shared_data, tmp_path):
  (tmp_path / "new_joints").mkdir()
  (tmp_path / "texts").mkdir()
  clip = tmp_path / "new_joints/012314.npy"
  clip.write_bytes((shared_data / "real/humanml3d/new_joints/012314.npy").read_bytes())
  (tmp_path / "texts/012314.txt").write_text(
      "a person serves a tennis ball.#a/DET person/NOUN serve/VERB#0.0#0.0\n"
      "someone swings their right arm overhead#someone/PRON swing/VERB#1.5#4.0\n")
  rec = skeleton.load(clip)
  assert [c["caption"] for c in rec.metadata["captions"]] == [
      "a person serves a tennis ball.", "someone swings their right arm overhead"]
  assert rec.metadata["captions"][1]["end"] == 4.0


def test_coco_keypoints_match_the_file(shared_data):
  path = shared_data / "real/coco17/test_coco.json"
  doc = json.loads(path.read_text())
  rec = skeleton.load(path)
  assert rec.format == "coco17" and rec.is_2d and rec.num_frames == 4
  assert int(rec.metadata["persons_per_image"].sum()) == 14
  cat = doc["categories"][0]
  assert tuple(cat["keypoints"]) == topology.COCO17.joint_names
  assert sorted(map(tuple, cat["skeleton"])) == sorted((a + 1, b + 1) for a, b in topology.COCO17.bones)
  ann = doc["annotations"][0]
  f = rec.metadata["image_ids"].index(ann["image_id"])
  m = list(rec.metadata["annotation_ids"][f]).index(ann["id"])
  kp = np.array(ann["keypoints"], np.float32).reshape(17, 3)
  assert np.array_equal(rec.positions[f, m, :, :2], kp[:, :2])
  # num_keypoints counts the labelled joints (v > 0).
  for a in doc["annotations"]:
    f = rec.metadata["image_ids"].index(a["image_id"])
    m = list(rec.metadata["annotation_ids"][f]).index(a["id"])
    assert rec.valid[f, m].sum() == a["num_keypoints"]
  per_image = skeleton.load_all(path)
  assert [r.num_persons for r in per_image] == [max(1, n) for n in rec.metadata["persons_per_image"]]


def test_h36m_frames_are_camera_space_with_y_down(shared_data):
  rec = skeleton.load(shared_data / "real/h36m/test_h36m_body3d.npz")
  assert rec.format == "h36m17" and rec.positions.shape == (4, 1, 17, 3) and not rec.is_2d
  assert rec.metadata["subject"] == [1, 5, 7, 8]
  assert np.all((rec.positions[..., 2] > 4) & (rec.positions[..., 2] < 7))  # z ~ 5 m
  head, feet = topology.H36M17.index("head"), [3, 6]
  for f in (0, 2, 3):  # SOURCES.md: head highest (smallest y) except the sitting frame 1
    assert rec.positions[f, 0, head, 1] == rec.positions[f, 0, :, 1].min()
    assert rec.positions[f, 0, feet, 1].max() == rec.positions[f, 0, :, 1].max()
  det = skeleton.load(shared_data / "real/h36m/test_h36m_2d_detection.npy")
  raw = np.load(shared_data / "real/h36m/test_h36m_2d_detection.npy")
  assert det.is_2d and det.positions.shape == (4, 1, 17, 3)
  assert np.array_equal(det.positions[:, 0, :, :2], raw[..., :2].astype(np.float32))


@pytest.mark.parametrize("name,frames,fps,joints", [
    ("131_01.bvh", 994, 120, 31), ("131_03.bvh", 1102, 120, 31), ("test_mocapbank.bvh", 455, 30, 19)])
def test_bvh_forward_kinematics_keeps_offset_bone_lengths(shared_data, name, frames, fps, joints):
  rec = skeleton.load(shared_data / "real/bvh" / name)
  ends = rec.metadata["end_site"]
  assert rec.num_frames == frames and round(rec.fps) == fps and int((~ends).sum()) == joints
  p = rec.positions[:, 0].astype(np.float64)
  offsets = rec.metadata["offsets"]
  for a, b in rec.topology.bones:
    assert rec.metadata["channels"][b] == () or not any(
        c.endswith("position") for c in rec.metadata["channels"][b])
    length = np.linalg.norm(p[:, b] - p[:, a], axis=-1)
    np.testing.assert_allclose(length, np.linalg.norm(offsets[b]), rtol=1e-5, atol=1e-4)
  # The feet touch one floor: the lowest joint's height varies little next to the body height.
  low = p[..., 1].min(axis=1)
  height = p[..., 1].max() - p[..., 1].min()
  assert low.std() < 0.05 * height


def test_bvh_rotations_compose_in_the_declared_channel_order(tmp_path):
  # Child offset (1, 0, 0); root channels "Zrotation Xrotation" with Z = 90, X = 90:
  # R = Rz(90) @ Rx(90), R @ (1, 0, 0) = Rz(90) @ (1, 0, 0) = (0, 1, 0).
  # The other order, Rx(90) @ Rz(90) @ (1, 0, 0) = Rx(90) @ (0, 1, 0) = (0, 0, 1).
  def write(channels):
    p = tmp_path / f"{channels.replace(' ', '_')}.bvh"
    p.write_text("HIERARCHY\nROOT a\n{\n  OFFSET 0 0 0\n  CHANNELS 2 " + channels + "\n"
                 "  JOINT b\n  {\n    OFFSET 1 0 0\n    CHANNELS 0\n"
                 "    End Site\n    {\n      OFFSET 0 2 0\n    }\n  }\n}\n"
                 "MOTION\nFrames: 1\nFrame Time:\t0.5\n90 90\n")
    return skeleton.load(p)
  zx, xz = write("Zrotation Xrotation"), write("Xrotation Zrotation")
  np.testing.assert_allclose(zx.positions[0, 0, 1], [0, 1, 0], atol=1e-6)
  np.testing.assert_allclose(xz.positions[0, 0, 1], [0, 0, 1], atol=1e-6)
  # End Site b_end at b + R_b (0, 2, 0), R_b = R_a: Rz Rx (0, 2, 0) = Rz (0, 0, 2) = (0, 0, 2).
  np.testing.assert_allclose(zx.positions[0, 0, 2], [0, 1, 2], atol=1e-6)
  assert zx.fps == 2.0 and zx.topology.joint_names == ("a", "b", "b_end")


def test_nw_ucla_json(tmp_path):
  rng = np.random.default_rng(0)
  xyz = rng.normal(size=(30, 20, 3)).round(6)
  p = tmp_path / "a06_s03_e02_v02.json"
  p.write_text(json.dumps({"file_name": "a06_s03_e02_v02", "skeletons": xyz.tolist(), "label": 6}))
  rec = skeleton.load(p)
  assert rec.format == "kinect20" and rec.positions.shape == (30, 1, 20, 3)
  assert np.array_equal(rec.positions[:, 0], xyz.astype(np.float32))
  assert (rec.metadata["action"], rec.metadata["subject"], rec.metadata["episode"],
          rec.metadata["view"], rec.metadata["label"]) == (6, 3, 2, 2, 6)


def test_format_override_and_unknown_format(shared_data, tmp_path):
  path = shared_data / "real/ntu_skeleton/S001C001P001R001A005.skeleton"
  copy = tmp_path / "clip.dat"
  copy.write_bytes(path.read_bytes())
  with pytest.raises(SkeletonFormatError, match="clip.dat.*unknown skeleton file type"):
    skeleton.load(copy)
  assert np.array_equal(skeleton.load(copy, format="ntu").positions, skeleton.load(path).positions)
  with pytest.raises(SkeletonFormatError, match="unknown format 'mocap'"):
    skeleton.load(path, format="mocap")


def test_every_registered_topology_is_consistent():
  # The shipped formats; a BVH file's own skeleton (registered at run time) names sides its way.
  for name in topology.BUILTIN:
    topo = topology.get(name)
    # Bones form a tree over all joints (connected, J - 1 edges) for every skeleton we ship.
    assert len(topo.bones) in (topo.num_joints - 1, topo.num_joints + 2), name
    for a, b in topo.left_right:
      la, lb = topo.joint_names[a], topo.joint_names[b]
      assert la.replace("left", "") == lb.replace("right", ""), (name, la, lb)
    covered = {j for part in topo.parts.values() for j in part}
    assert covered == set(range(topo.num_joints)), name


def test_bvh_topology_from_file(shared_data):
  rec = skeleton.load(shared_data / "real/bvh/131_01.bvh")
  topo = rec.topology
  names = topo.joint_names
  assert names[0] == "Hips" and topo.up_axis == "+y"
  pairs = {(names[a], names[b]) for a, b in topo.left_right}
  assert ("LeftHip", "RightHip") in pairs and ("LThumb", "RThumb") in pairs
  assert isinstance(topo, topology.Topology) and isinstance(bvh.bvh_topology, object)


# Files in ../shared/data/real that hold no skeleton sequence, and why load() refuses them.
NOT_SKELETONS = {
    "SOURCES.md": "unknown skeleton file type '.md'",
    "NTU_RGBD_samples_with_missing_skeletons.txt": "unknown text skeleton format",
    "NTU_RGBD120_samples_with_missing_skeletons.txt": "unknown text skeleton format",
    "S001C001P001R001A001.skeleton.npy": "pickled .npy",  # the official converter's dict
    "kinetics_val_label.json": "unknown JSON skeleton layout",
    "Mean.npy": "unknown .npy skeleton array of shape (263,)",
    "Std.npy": "unknown .npy skeleton array of shape (263,)",
}


def test_every_real_file_loads_or_is_refused_with_a_reason(shared_data):
  seen = 0
  for path in sorted((shared_data / "real").rglob("*")):
    if not path.is_file():
      continue
    if path.name in NOT_SKELETONS:
      with pytest.raises(SkeletonFormatError, match=NOT_SKELETONS[path.name].replace("(", r"\(")
                         .replace(")", r"\)").replace(".", r"\.")):
        skeleton.load(path)
      continue
    rec = skeleton.load(path)
    assert rec.num_frames >= 1 and np.isfinite(rec.positions).all(), path
    assert rec.topology.num_joints == rec.num_joints, path
    seen += 1
  assert seen == 7 + 1 + 5 + 2 + 1 + 2 + 3  # NTU, PKU, Kinetics, HumanML3D, COCO, H36M, BVH
