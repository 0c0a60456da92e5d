"""Topology registry and cross-format joint correspondences."""

import numpy as np

from skel_llm import skeleton
from skel_llm.skeleton import correspondence, topology


def test_ntu_order_is_the_renderer_checkpoint_order():
  # Bone list of ../shared/data/draction_reference/README.md (1-based there).
  ref = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
         (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
         (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]
  assert topology.NTU25.bones == tuple((a - 1, b - 1) for a, b in ref)
  assert topology.NTU25.num_joints == 25 and topology.NTU25.joint_names[20] == "spine_shoulder"


def test_registry_holds_every_format():
  assert topology.BUILTIN == ("coco17", "h36m17", "kinect20", "ntu25", "openpose18", "smpl22")
  assert set(topology.BUILTIN) <= set(topology.names())  # plus any registered at run time
  assert topology.get("openpose18").is_2d and not topology.get("smpl22").is_2d


def test_ntu_to_coco_pairs_the_twelve_limb_joints():
  idx = correspondence.correspondence("ntu25", "coco17")
  names = topology.COCO17.joint_names
  exact = {names[j]: topology.NTU25.joint_names[i] for j, i in enumerate(idx) if i >= 0}
  assert exact == {n: n for n in names[5:]}
  approx = correspondence.correspondence("ntu25", "coco17", approximate=True)
  assert topology.NTU25.joint_names[approx[0]] == "head" and (approx[1:5] == -1).all()


def test_kinect_v1_maps_onto_ntu_v2_joints():
  idx = correspondence.correspondence("kinect20", "ntu25")
  ntu = topology.NTU25.joint_names
  missing = [ntu[j] for j in np.flatnonzero(idx < 0)]
  assert missing == ["neck", "left_hand_tip", "left_thumb", "right_hand_tip", "right_thumb"]
  assert idx[ntu.index("spine_shoulder")] == topology.KINECT20.index("shoulder_center")
  back = correspondence.correspondence("ntu25", "kinect20")
  assert (back >= 0).all() and (idx[back] == np.arange(20)).all()


def test_h36m_and_openpose_special_names():
  idx = correspondence.correspondence("h36m17", "ntu25")
  assert idx[topology.NTU25.index("left_ankle")] == topology.H36M17.index("left_foot")
  assert idx[topology.NTU25.index("left_foot")] == -1
  op = correspondence.correspondence("coco17", "openpose18")
  assert (op >= 0).sum() == 17 and op[topology.OPENPOSE18.index("neck")] == -1


def test_converted_ntu_clip_keeps_its_limb_lengths_in_coco(shared_data):
  rec = skeleton.load(shared_data / "real/ntu_skeleton/S001C001P001R001A001.skeleton")
  coco = correspondence.convert(rec, "coco17")
  assert coco.format == "coco17" and coco.positions.shape == (103, 1, 17, 3)
  assert not coco.is_2d  # 3D positions stay 3D even in a 2D layout
  assert np.all(coco.valid[:, :, :5] == 0) and np.all(coco.valid[:, :, 5:] == 1)
  ntu, cc = topology.NTU25, topology.COCO17
  for a, b in (("left_shoulder", "left_elbow"), ("right_knee", "right_ankle")):
    la = np.linalg.norm(rec.positions[:, 0, ntu.index(a)] - rec.positions[:, 0, ntu.index(b)], axis=-1)
    lb = np.linalg.norm(coco.positions[:, 0, cc.index(a)] - coco.positions[:, 0, cc.index(b)], axis=-1)
    np.testing.assert_array_equal(la, lb)
  assert coco.metadata["converted_from"]["missing"] == list(cc.joint_names[:5])


def test_humanml3d_to_ntu(shared_data):
  rec = skeleton.load(shared_data / "real/humanml3d/new_joints/012314.npy")
  ntu = correspondence.convert(rec, "ntu25")
  got = {topology.NTU25.joint_names[j] for j in np.flatnonzero(ntu.valid[0, 0])}
  assert got == {"spine_base", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
                 "right_shoulder", "right_elbow", "right_wrist", "left_hip", "left_knee",
                 "left_ankle", "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot"}
  np.testing.assert_array_equal(ntu.positions[:, 0, 0], rec.positions[:, 0, 0])
  approx = correspondence.convert(rec, "ntu25", approximate=True)
  assert approx.valid[0, 0, topology.NTU25.index("spine_shoulder")] == 1
