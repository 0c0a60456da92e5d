"""Pins the blend-rule ablations (skel_llm/render/layout.py BLEND_RULES, DrAction(blend=)):
the distance kernel by hand, which rules train, transfer and export of trained logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skel_llm.render import DrAction, checkpoint, layout, renderer
from skel_llm.skeleton import topology as topology_lib


def test_graph_hops_on_ntu25_by_hand():
  topo = topology_lib.get("ntu25")
  hops = layout.graph_hops(topo)
  a, b = topo.bones[0]
  assert hops[a, b] == 1.0 and np.all(np.diag(hops) == 0.0)
  np.testing.assert_array_equal(hops, hops.T)
  assert np.all(np.isfinite(hops))  # one connected skeleton
  # Triangle inequality along every bone.
  for p, c in topo.bones:
    assert np.all(np.abs(hops[p] - hops[c]) <= 1.0)


def test_distance_rule_by_hand():
  topo = topology_lib.get("ntu25")
  lay = layout.build_layout(topo, samples_per_bone=10, blend="distance")
  w = np.asarray(jax.nn.softmax(jnp.asarray(lay.blend_logits), -1), np.float64)
  np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
  hops = layout.graph_hops(topo)
  # A joint Gaussian: exp(-h^2 / 2) over the joints, normalised.
  expect = np.exp(-0.5 * hops[3] ** 2)
  np.testing.assert_allclose(w[3], expect / expect.sum(), rtol=1e-5)
  # The first sample of the first bone, at a = 1/11 from the parent.
  (p, c), a = topo.bones[0], 1.0 / 11.0
  d = np.minimum(a + hops[p], 1.0 - a + hops[c])
  expect = np.exp(-0.5 * d ** 2)
  np.testing.assert_allclose(w[topo.num_joints], expect / expect.sum(), rtol=1e-5)
  # Nearest joints weigh most; not one-hot any more.
  assert w[3].argmax() == 3 and w[3, 3] < 0.9


def test_topology_rule_unchanged_and_uniform_is_flat():
  base = layout.build_layout("ntu25")
  assert base.blend_logits.shape == (265, 25)
  np.testing.assert_array_equal(layout.build_layout("ntu25", blend="topology").blend_logits,
                                base.blend_logits)
  np.testing.assert_array_equal(layout.build_layout("ntu25", blend="learnable").blend_logits,
                                base.blend_logits)
  assert np.all(layout.build_layout("ntu25", blend="uniform").blend_logits == 0.0)
  with pytest.raises(ValueError, match="blend rule must be one of"):
    layout.build_layout("ntu25", blend="random")


def _clip(seed=0, n=1):
  rng = np.random.default_rng(seed)
  poses = np.zeros((n, 2, 25, 3), np.float32)
  poses[:, 0] = rng.normal(0, 0.3, (n, 25, 3)) + np.array([0.0, 0.0, 3.0])
  vels = rng.normal(0, 0.05, poses.shape).astype(np.float32)
  vels[:, 1] = 0
  return jnp.asarray(poses), jnp.asarray(vels)


@pytest.mark.parametrize("rule", ["uniform", "learnable"])
def test_learned_rules_train_the_logits(rule):
  model = DrAction("ntu25", blend=rule, rngs=nnx.Rngs(0))
  w = model.weights()
  assert w["params"]["blend_logits"].shape == (265, 25)
  poses, vels = _clip()

  def loss(params):
    frames = renderer.render({"params": params, "buffers": w["buffers"]}, poses, vels,
                             image_size=12, fov_deg=35.0, dense=True)
    return jnp.mean(frames * jnp.linspace(0.0, 1.0, 12)[:, None, None])

  grads = jax.jit(jax.grad(loss))(w["params"])
  assert float(jnp.abs(grads["blend_logits"]).sum()) > 0.0
  # The trained logits, not the buffer, place the Gaussians.
  moved = dict(w["params"], blend_logits=w["params"]["blend_logits"].at[:, 0].add(5.0))
  a = renderer.render(w, poses, vels, image_size=12, fov_deg=35.0, dense=True)
  b = renderer.render({"params": moved, "buffers": w["buffers"]}, poses, vels, image_size=12,
                      fov_deg=35.0, dense=True)
  assert float(jnp.abs(a - b).max()) > 1e-3


def test_fixed_rules_have_no_trained_logits_and_distance_draws_otherwise():
  t = DrAction("ntu25", blend="topology", rngs=nnx.Rngs(0))
  d = DrAction("ntu25", blend="distance", rngs=nnx.Rngs(0))
  assert "blend_logits" not in t.weights()["params"]
  assert "blend_logits" not in d.weights()["params"]
  poses, vels = _clip()
  ft = t(poses, vels, image_size=12, fov_deg=35.0, dense=True)
  fd = d(poses, vels, image_size=12, fov_deg=35.0, dense=True)
  assert float(jnp.abs(ft - fd).max()) > 1e-3


def test_transfer_drops_trained_logits_and_keeps_a_fixed_rule():
  learned = DrAction("ntu25", blend="learnable", rngs=nnx.Rngs(0)).weights()
  out = checkpoint.transfer_to(jax.tree.map(np.asarray, learned), "kinect20",
                               blend="learnable")
  assert "blend_logits" not in out["params"]
  np.testing.assert_array_equal(out["buffers"]["blend_logits"],
                                layout.build_layout("kinect20").blend_logits)
  dist = DrAction("ntu25", blend="distance", rngs=nnx.Rngs(0)).weights()
  out = checkpoint.transfer_to(jax.tree.map(np.asarray, dist), "kinect20", blend="distance")
  np.testing.assert_array_equal(out["buffers"]["blend_logits"],
                                layout.build_layout("kinect20", blend="distance").blend_logits)


def test_export_writes_trained_logits_and_reloads(tmp_path):
  model = DrAction("ntu25", blend="learnable", rngs=nnx.Rngs(0))
  w = jax.tree.map(np.asarray, model.weights())
  w["params"]["blend_logits"] = w["params"]["blend_logits"] + np.float32(0.25)
  path = tmp_path / "learned.safetensors"
  checkpoint.export_released(w, path, param_dtype="float32")
  back = checkpoint.load_released(path)
  np.testing.assert_array_equal(back["buffers"]["blend_logits"], w["params"]["blend_logits"])


def test_load_weights_names_a_blend_mismatch():
  fixed = DrAction("ntu25", rngs=nnx.Rngs(0)).weights()
  learned = DrAction("ntu25", blend="learnable", rngs=nnx.Rngs(1))
  with pytest.raises(ValueError, match="params.blend_logits"):
    learned.load_weights(fixed)
  restored = DrAction.from_weights(jax.tree.map(np.asarray, learned.weights()))
  assert restored.blend_rule == "learnable"
