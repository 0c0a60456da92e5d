"""`skel_llm.render.layout` against the released NTU layout and the REFERENCE §2 rules."""

import numpy as np
import pytest

from skel_llm.render import checkpoint, layout
from skel_llm.skeleton import topology


def test_ntu_layout_matches_released_buffers(shared_data):
  w = checkpoint.load_released(shared_data / "draction_reference" / "draction_candidate_01.safetensors")
  b = w["buffers"]
  lay = layout.build_layout("ntu25", rest_pose=b["canonical_joints"])
  assert lay.num_gaussians == 265 and lay.samples_per_bone == (10,) * 24
  # Same blend weights (the release's logits were rounded to bf16: weights agree to ~1e-2,
  # and the dominant joints agree exactly).
  ours = np.exp(lay.blend_logits) / np.exp(lay.blend_logits).sum(-1, keepdims=True)
  theirs = np.exp(b["blend_logits"] - b["blend_logits"].max(-1, keepdims=True))
  theirs /= theirs.sum(-1, keepdims=True)
  np.testing.assert_allclose(ours, theirs, atol=2e-2)
  np.testing.assert_array_equal(np.argsort(-ours, -1)[:, :2][25:], np.argsort(-theirs, -1)[:, :2][25:])
  np.testing.assert_allclose(lay.canonical_means, b["canonical_means"], atol=2e-2)
  np.testing.assert_array_equal(lay.canonical_means[:25], b["canonical_means"][:25])


def test_fractions_and_exact_softmax():
  lay = layout.build_layout("kinect20", samples_per_bone=3)
  topo = topology.get("kinect20")
  assert lay.num_gaussians == 20 + 3 * topo.num_bones
  w = np.exp(lay.blend_logits.astype(np.float64))
  w /= w.sum(-1, keepdims=True)
  np.testing.assert_allclose(w[:20], np.eye(20), atol=1e-12)
  a, c = topo.bones[0]
  np.testing.assert_allclose(w[20:23, a], [0.75, 0.5, 0.25], atol=1e-7)
  np.testing.assert_allclose(w[20:23, c], [0.25, 0.5, 0.75], atol=1e-7)
  np.testing.assert_allclose(lay.fractions[20:23], [0.25, 0.5, 0.75])


def test_radii_and_proportional_samples():
  topo = topology.get("smpl22")
  rest = np.random.default_rng(0).normal(size=(22, 3))
  lay = layout.build_layout(topo, samples_per_bone="proportional", rest_pose=rest)
  lengths = layout.bone_lengths(topo, rest)
  counts = np.array(lay.samples_per_bone)
  assert counts.min() >= 2 and counts.max() == 24 and counts[np.argmax(lengths)] == 24
  assert np.all(np.diff(counts[np.argsort(lengths)]) >= 0)  # monotone in length
  # Bone radius 0.020 (L / Lmax) clipped to [0.006, 0.030].
  bone_r = lay.scales[22:, 0]
  expected = np.clip(0.020 * lengths[lay.bone_of[22:]] / lengths.max(), 0.006, 0.030)
  np.testing.assert_allclose(bone_r, expected, rtol=1e-6)
  assert (lay.scales[:22, 0] >= 0.010).all() and (lay.scales[:22, 0] <= 0.035).all()
  # The authors' SMPL-22 setting: gamma 0, joint 0.026, bone 0.016 -> constant radii.
  flat = layout.build_layout(topo, rest_pose=rest, gamma=0.0, joint_radius=0.026, bone_radius=0.016)
  np.testing.assert_allclose(flat.scales[:22], 0.026)
  np.testing.assert_allclose(flat.scales[22:], 0.016)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match="proportional"):
    layout.build_layout("ntu25", samples_per_bone="many")
  with pytest.raises(ValueError, match=r"\[25, 3\]"):
    layout.build_layout("ntu25", rest_pose=np.zeros((20, 3)))
