"""Mixed-format batches (`skel_llm.render.mixed`): each row drawn with its own topology's layout.

The references are outside the code under test: each row rendered alone by the single-topology
renderer (`renderer.render_batch`) with its topology's weights, the primary's own for ntu25 and
`checkpoint.transfer_to` (the cross-format path) for the others.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from skel_llm import synthetic
from skel_llm.render import camera, checkpoint, frames, mixed, module, renderer

S = 32
N = 4
TOPOS = ("ntu25", "smpl22", "kinect20")  # K 265, 526 (proportional), 210: pads both ways


def _clip(topo, cls, seed):
  rec = synthetic.generate_clip(cls, seed, num_frames=24, topology=topo)
  pos = camera.place(np.asarray(rec.positions, np.float32), "auto", topo)
  p, v, _ = frames.select_frames(jnp.asarray(pos), jnp.int32(pos.shape[0]), N, rng=None)
  return np.asarray(p), np.asarray(v)


def _persons(x, p=2):
  return np.pad(x, ((0, 0), (0, p - x.shape[1]), (0, 0), (0, 0)))


@pytest.fixture(scope="module")
def setup():
  model = module.DrAction("ntu25", rngs=nnx.Rngs(3))
  w = jax.tree.map(np.asarray, model.weights())
  # Non-trivial shared parameters: features far from init so interpolation errors would show.
  w["params"]["features"] = np.random.default_rng(0).normal(
      0, 1.0, w["params"]["features"].shape).astype(np.float32)
  lay = mixed.build("ntu25", model.samples_per_bone, TOPOS)
  rows = [("ntu25", "handshake", 1), ("smpl22", "bow", 2), ("kinect20", "squat", 3),
          ("smpl22", "kick right leg", 4)]
  clips = [_clip(*r) for r in rows]
  topo = np.array([TOPOS.index(r[0]) for r in rows], np.int32)
  poses = np.stack([_persons(mixed.pad_joints(p, lay.num_joints)) for p, _ in clips])
  vels = np.stack([_persons(mixed.pad_joints(v, lay.num_joints)) for _, v in clips])
  alone_w = {t: (w if t == "ntu25" else checkpoint.transfer_to(w, t)) for t in TOPOS}
  return dict(w=w, lay=lay, rows=rows, clips=clips, topo=topo, poses=poses, vels=vels,
              alone_w=alone_w)


@pytest.mark.parametrize("dense", [True, False])
def test_each_row_equals_that_row_rendered_alone_with_its_topology(setup, dense):
  s = setup
  out, overflow, _ = mixed.render_batch(s["w"], s["topo"], s["poses"], s["vels"], mixed=s["lay"],
                                        image_size=S, fov_deg=35.0, dense=dense)
  assert int(np.max(overflow)) == 0
  for i, ((t, _, _), (p, v)) in enumerate(zip(s["rows"], s["clips"])):
    ref = renderer.render_batch(s["alone_w"][t], _persons(p)[None], _persons(v)[None],
                                image_size=S, fov_deg=35.0, dense=dense)[0][0]
    assert float(jnp.mean(ref > 0)) > 0.05, "the clip must be visible for the check to bite"
    np.testing.assert_allclose(np.asarray(out[i]), np.asarray(ref), atol=2e-6, rtol=0)


def test_pad_gaussians_change_nothing(setup, monkeypatch):
  """Pads are opacity 0 and outside the depth-colour range: making them huge, metre-wide
  Gaussians (covering the whole image) leaves every frame as it was."""
  s = setup
  base = mixed.render_batch(s["w"], s["topo"], s["poses"], s["vels"], mixed=s["lay"],
                            image_size=S, fov_deg=35.0, dense=True)[0]
  monkeypatch.setattr(mixed, "_PAD_SCALE", 1.0)
  big = mixed.build("ntu25", (10,) * 24, TOPOS)  # a new static object: traced again
  assert not np.all(big.valid)
  out = mixed.render_batch(s["w"], s["topo"], s["poses"], s["vels"], mixed=big, image_size=S,
                           fov_deg=35.0, dense=True)[0]
  np.testing.assert_array_equal(np.asarray(out), np.asarray(base))
  # and the pads' attributes: zero opacity, every real Gaussian's colour as without pads
  # the kinect20 row: 210 Gaussians padded to 526
  rows, valid = mixed.row_weights(s["w"], s["lay"], jnp.asarray(s["topo"][2:3]))
  w1 = {"params": dict(rows["params"], features=rows["params"]["features"][0]),
        "buffers": jax.tree.map(lambda x: x[0], rows["buffers"])}
  p, v = _persons(mixed.pad_joints(s["clips"][2][0], 25)), _persons(
      mixed.pad_joints(s["clips"][2][1], 25))
  _, colour, alpha = renderer.gaussian_attributes(w1, p, v, valid=valid[0])
  k = s["alone_w"]["kinect20"]["buffers"]["canonical_means"].shape[0]
  assert k < s["lay"].num_gaussians
  assert float(jnp.max(jnp.abs(alpha[..., k:]))) == 0.0
  _, c_ref, a_ref = renderer.gaussian_attributes(
      s["alone_w"]["kinect20"], _persons(s["clips"][2][0]), _persons(s["clips"][2][1]))
  # The derived features are a matrix product, transfer_to's an interpolation per Gaussian:
  # equal in exact arithmetic, float32 rounding apart (1.2e-6 measured on an AVX2 CPU, after the
  # appearance MLP); 2e-6, the bound the frames are held to in
  # test_each_row_equals_that_row_rendered_alone_with_its_topology.
  np.testing.assert_allclose(np.asarray(colour[..., :k, :]), np.asarray(c_ref), atol=2e-6)
  np.testing.assert_allclose(np.asarray(alpha[..., :k]), np.asarray(a_ref), atol=1e-6)


def test_feature_map_is_transfer():
  """The derived features are `checkpoint.transfer`'s interpolation (as a matrix)."""
  feats = np.random.default_rng(1).normal(size=(265, 3)).astype(np.float32)
  w = jax.tree.map(np.asarray, module.DrAction("ntu25", rngs=nnx.Rngs(0)).weights())
  w["params"]["features"] = feats
  lay = mixed.build("ntu25", (10,) * 24, ("ntu25", "smpl22"))
  got = np.asarray(mixed.topology_weights(w, lay)["params"]["features"])
  want = checkpoint.transfer_to(w, "smpl22")["params"]["features"]
  np.testing.assert_allclose(got[1, :want.shape[0]], want, atol=1e-6)
  np.testing.assert_array_equal(got[1, want.shape[0]:], 0.0)
  np.testing.assert_array_equal(got[0, :265], feats)


def test_gradients_reach_shared_parameters_from_both_topologies(setup):
  """d(row loss)/d(shared parameters) is non-zero from an ntu25 row and from an smpl22 row, and
  the smpl22 row's feature gradient is the chain rule through the transfer matrix of the
  gradient of the same row rendered alone with the transferred renderer."""
  s = setup
  rng = np.random.default_rng(5)
  target = jnp.asarray(rng.uniform(size=(N, S, S, 3)).astype(np.float32))

  def row_loss(params, i):
    w = {"params": params, "buffers": s["w"]["buffers"]}
    out = mixed.render_batch(w, s["topo"][i:i + 1], s["poses"][i:i + 1], s["vels"][i:i + 1],
                             mixed=s["lay"], image_size=S, fov_deg=35.0, dense=True)[0]
    return jnp.sum((out[0] - target) ** 2)

  params = jax.tree.map(jnp.asarray, s["w"]["params"])
  g_ntu = jax.grad(row_loss)(params, 0)
  g_smpl = jax.grad(row_loss)(params, 1)
  for g in (g_ntu, g_smpl):
    for path, leaf in jax.tree_util.tree_leaves_with_path(g):
      assert float(jnp.max(jnp.abs(leaf))) > 0, f"no gradient reaches {path}"

  ws = s["alone_w"]["smpl22"]
  p, v = _persons(s["clips"][1][0])[None], _persons(s["clips"][1][1])[None]

  def alone_loss(feats):
    w = {"params": dict(ws["params"], features=feats), "buffers": ws["buffers"]}
    out = renderer.render_batch(w, p, v, image_size=S, fov_deg=35.0, dense=True)[0]
    return jnp.sum((out[0] - target) ** 2)

  g_alone = jax.grad(alone_loss)(jnp.asarray(ws["params"]["features"]))
  k = g_alone.shape[0]
  chain = s["lay"].feature_maps[1, :k].T @ np.asarray(g_alone)
  np.testing.assert_allclose(np.asarray(g_smpl["features"]), chain, rtol=1e-4,
                             atol=1e-5 * float(np.abs(chain).max()))


def test_build_rejects_bad_mixtures():
  with pytest.raises(ValueError, match=r"config.data.topologies.*include config.render.topology"):
    mixed.build("ntu25", (10,) * 24, ("smpl22", "kinect20"))
  with pytest.raises(ValueError, match=r"config.data.topologies: 'ntu26' is unknown"):
    mixed.build("ntu25", (10,) * 24, ("ntu25", "ntu26"))
  with pytest.raises(ValueError, match=r"names a topology twice"):
    mixed.build("ntu25", (10,) * 24, ("ntu25", "smpl22", "smpl22"))
  with pytest.raises(ValueError, match=r"mixture of .* pads to 25"):
    lay = mixed.build("ntu25", (10,) * 24, ("ntu25", "smpl22"))
    z = np.zeros((1, N, 2, 22, 3), np.float32)
    mixed.render_batch(module.DrAction("ntu25", rngs=nnx.Rngs(0)).weights(), np.zeros(1, np.int32),
                       z, z, mixed=lay, image_size=S)
