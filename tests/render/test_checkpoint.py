"""`skel_llm.render.checkpoint`: released files read exactly, written back, transferred."""

import json

import numpy as np
import pytest

from skel_llm.render import checkpoint, layout, renderer

REF = "draction_reference"


@pytest.mark.parametrize("cand", ["01", "02", "03"])
def test_load_matches_torch_upcast(shared_data, cand):
  import torch
  from safetensors.torch import load_file

  path = shared_data / REF / f"draction_candidate_{cand}.safetensors"
  theirs = {k: v.to(torch.float32).numpy() for k, v in load_file(str(path)).items()}
  meta = json.loads(path.with_suffix(".json").read_text())
  ours = checkpoint.load_released(path)
  p, b = ours["params"], ours["buffers"]
  assert ("nfm" in p) == meta["enable_nfm"]
  np.testing.assert_array_equal(p["features"], theirs["canonical_features"])
  np.testing.assert_array_equal(p["appearance"]["w0"], theirs["appearance_head.0.weight"].T)
  np.testing.assert_array_equal(p["appearance"]["w1"], theirs["appearance_head.2.weight"].T)
  np.testing.assert_array_equal(p["depth_mix_logit"], theirs["depth_mix_logit"])
  assert p["depth_mix_logit"].shape == ()
  if meta["enable_nfm"]:
    np.testing.assert_array_equal(p["nfm"]["w0"], theirs["nfm.0.weight"].T)
    np.testing.assert_array_equal(p["nfm"]["b1"], theirs["nfm.2.bias"])
  np.testing.assert_array_equal(b["blend_logits"], theirs["lbs_weights_logits"])
  np.testing.assert_array_equal(b["scales"], theirs["canonical_scales"])
  assert all(v.dtype == np.float32 for v in (p["features"], b["canonical_means"]))


def test_export_round_trip_bf16_and_f32(shared_data, tmp_path):
  src = shared_data / REF / "draction_candidate_01.safetensors"  # bf16 trained tensors
  w = checkpoint.load_released(src)
  for dtype in ("bfloat16", "float32"):
    out = tmp_path / f"again_{dtype}.safetensors"
    checkpoint.export_released(w, out, param_dtype=dtype)
    back = checkpoint.load_released(out)
    np.testing.assert_array_equal(np.concatenate([x.ravel() for x in _leaves(w)]),
                                  np.concatenate([x.ravel() for x in _leaves(back)]))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["format"] == checkpoint.FORMAT and meta["enable_nfm"] is True


def _leaves(tree):
  if isinstance(tree, dict):
    return [x for k in sorted(tree) for x in _leaves(tree[k])]
  return [np.asarray(tree, np.float32)]


def test_bad_files_raise_naming_the_problem(shared_data, tmp_path):
  from safetensors.numpy import save_file

  w = checkpoint.load_released(shared_data / REF / "draction_candidate_03.safetensors")
  path = tmp_path / "bad.safetensors"
  checkpoint.export_released(w, path, param_dtype="float32")
  tensors = checkpoint._read_safetensors(str(path))
  del tensors["canonical_means"]
  tensors["mystery"] = np.zeros(3, np.float32)
  save_file(tensors, str(path))
  with pytest.raises(ValueError, match="canonical_means"):
    checkpoint.load_released(path)
  tensors = checkpoint._read_safetensors(str(shared_data / REF / "draction_candidate_03.safetensors"))
  tensors["canonical_features"] = np.zeros((264, 3), np.float32)
  save_file(tensors, str(path))
  with pytest.raises(ValueError, match=r"params.features: expected shape \(265, 3\)"):
    checkpoint.load_released(path)


def test_transfer_to_other_topologies(shared_data):
  w = checkpoint.load_released(shared_data / REF / "draction_candidate_01.safetensors")
  feats = w["params"]["features"]
  # Same layout: identity.
  same = checkpoint.transfer(w, layout.build_layout("ntu25"))
  np.testing.assert_allclose(same["params"]["features"], feats, atol=1e-6)
  for name, spb in (("kinect20", 10), ("smpl22", "proportional"), ("coco17", 4)):
    target = layout.build_layout(name, samples_per_bone=spb)
    moved = checkpoint.transfer(w, target)
    f = moved["params"]["features"]
    assert f.shape == (target.num_gaussians, 3)
    j = target.num_joints
    # Ends of both banks are kept; values stay inside the source range (linear interpolation).
    np.testing.assert_allclose(f[0], feats[0], atol=1e-6)
    np.testing.assert_allclose(f[j - 1], feats[24], atol=1e-6)
    np.testing.assert_allclose(f[j], feats[25], atol=1e-6)
    np.testing.assert_allclose(f[-1], feats[-1], atol=1e-6)
    assert f.min() >= feats.min() - 1e-6 and f.max() <= feats.max() + 1e-6
    assert moved["params"]["nfm"] is w["params"]["nfm"]
    # Renders with the target topology's joints.
    poses = np.zeros((2, 1, j, 3), np.float32)
    poses[:, 0] = np.random.default_rng(0).normal(scale=0.3, size=(j, 3)) + [0, 0, 3]
    img = renderer.render(moved, poses, np.zeros_like(poses), image_size=32)
    assert np.isfinite(np.asarray(img)).all() and float(np.asarray(img).max()) > 0.05


def test_target_layout_takes_a_topology_object_and_refuses_one_without_bones():
  import dataclasses

  from skel_llm.skeleton import topology as topology_lib
  smpl = topology_lib.get("smpl22")
  for topo in (smpl, dataclasses.replace(topology_lib.get("kinect20"), name="bvh:kinect_copy")):
    by_object = checkpoint.target_layout(topo)
    by_name = checkpoint.target_layout(smpl.name if topo is smpl else "kinect20")
    assert by_object.samples_per_bone == by_name.samples_per_bone
    np.testing.assert_array_equal(by_object.scales, by_name.scales)
  # SMPL-22 by object too gets the authors' layout, not 10 samples per bone.
  assert checkpoint.target_layout(smpl).samples_per_bone != (10,) * smpl.num_bones
  dot = topology_lib.Topology(name="bvh:dot", joint_names=("Hips",), bones=(), root=0,
                              left_right=(), parts={})
  with pytest.raises(ValueError, match=r"topology 'bvh:dot' \(1 joint\(s\)\) has no bones"):
    checkpoint.target_layout(dot)
