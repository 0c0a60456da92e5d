"""`skel_llm.render.camera`: projection by hand, the Jacobian by autodiff, placement rules."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skel_llm.render import camera


def test_projection_by_hand():
  s = 448
  f = s / (2 * math.tan(math.radians(30)))
  means = jnp.array([[0.0, 0.0, 2.0], [0.5, -0.25, 2.5], [0.1, 0.2, 0.0]])
  uv, _ = camera.project(means, jnp.tile(jnp.eye(3) * 1e-4, (3, 1, 1)), s)
  expected = [[224.0, 224.0], [f * 0.5 / 2.5 + 224, f * 0.25 / 2.5 + 224],
              [f * 0.1 / 1e-4 + 224, -f * 0.2 / 1e-4 + 224]]  # z clamped to 1e-4
  np.testing.assert_allclose(np.asarray(uv), expected, rtol=1e-6)


def test_screen_covariance_is_jacobian_sandwich():
  mean = jnp.array([0.3, -0.2, 3.1])
  cov = camera.covariance3d(jnp.array([[0.02, 0.03, 0.01]]),
                            jnp.array([[0.9, 0.1, -0.3, 0.2]]))[0]
  jac = jax.jacfwd(lambda m: camera.project(m[None], cov[None], 96, 50.0)[0][0])(mean)
  _, cov2d = camera.project(mean[None], cov[None], 96, 50.0)
  expected = jac @ cov @ jac.T + 1e-5 * jnp.eye(2)
  np.testing.assert_allclose(np.asarray(cov2d[0]), np.asarray(expected), rtol=1e-5)


def test_covariance_rotation_keeps_eigenvalues():
  scales = jnp.array([[0.01, 0.02, 0.04]])
  cov = camera.covariance3d(scales, jnp.array([[0.5, 0.5, -0.5, 0.5]]))[0]
  np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(np.asarray(cov))),
                             np.array([1e-4, 4e-4, 16e-4]), rtol=1e-5)


def test_view_rotation_keeps_distances_and_absent_person():
  rng = np.random.default_rng(0)
  poses = rng.normal(size=(4, 2, 5, 3)).astype(np.float32) + [0, 0, 3]
  poses[:, 1] = 0.0
  vels = rng.normal(size=poses.shape).astype(np.float32)
  p2, v2 = camera.random_view_rotation(jax.random.key(1), jnp.asarray(poses), jnp.asarray(vels))
  p2, v2 = np.asarray(p2), np.asarray(v2)
  assert np.abs(p2 - poses).max() > 1e-3
  np.testing.assert_array_equal(p2[:, 1], 0.0)
  d = lambda p: np.linalg.norm(p[:, 0, :, None] - p[:, 0, None], axis=-1)  # noqa: E731
  np.testing.assert_allclose(d(p2), d(poses), atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(v2[:, 0], axis=-1),
                             np.linalg.norm(vels[:, 0], axis=-1), rtol=1e-5)
  np.testing.assert_allclose(p2[:, 0, :, 1], poses[:, 0, :, 1], atol=1e-6)  # vertical axis


def test_placement_rules():
  pos = np.zeros((3, 2, 4, 3), np.float32)
  pos[:, 0] = [[0.1, 1.0, 0.2]] * 4  # median z 0.2 < 0.5: shifted by +1
  out = camera.place(pos, "kinect")
  np.testing.assert_allclose(out[:, 0, :, 2], 1.2)
  np.testing.assert_array_equal(out[:, 1], 0.0)
  pos[:, 0] = [[0.1, 1.0, 3.0]] * 4  # a no-op for NTU-like depth
  np.testing.assert_array_equal(camera.place(pos, "kinect"), pos)
  h = np.zeros((2, 1, 3, 3), np.float32)
  h[:, 0] = [[0.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.2, 1.6, 1.0]]
  out = camera.place(h, "humanml3d")
  np.testing.assert_allclose(np.median(out[..., 1]), 0.0, atol=1e-6)
  np.testing.assert_allclose(np.median(out[..., 2]), 2.5, atol=1e-6)
  # x is centred on the middle of its range (our addition to the release's rule), z kept apart.
  np.testing.assert_allclose(out[..., 0], h[..., 0] - 0.1, atol=1e-6)
  np.testing.assert_allclose(np.diff(out[0, 0, :, 2]), np.diff(h[0, 0, :, 2]), atol=1e-6)
  front = camera.place(h, "humanml3d_front")  # turned about the vertical: x and z reversed
  np.testing.assert_allclose(front[..., 1], out[..., 1], atol=1e-6)
  np.testing.assert_allclose(np.diff(front[0, 0, :, 0]), -np.diff(h[0, 0, :, 0]), atol=1e-6)
  np.testing.assert_allclose(np.diff(front[0, 0, :, 2]), -np.diff(h[0, 0, :, 2]), atol=1e-6)
  np.testing.assert_allclose(np.median(front[..., 2]), 2.5, atol=1e-6)


def test_unknown_rule_and_missing_topology_are_named():
  pos = np.ones((2, 1, 3, 3), np.float32)
  with pytest.raises(ValueError, match="unknown placement rule 'kinnect'.*'auto'"):
    camera.place(pos, "kinnect", "ntu25")
  with pytest.raises(ValueError, match="needs the clip's topology"):
    camera.place(pos, "normalise")


def test_auto_rule_follows_units_up_axis_and_2d_flag():
  assert [camera.auto_rule(n) for n in ("ntu25", "kinect20", "smpl22", "coco17", "openpose18",
                                        "h36m17")] == ["kinect", "kinect", "humanml3d_front",
                                                       "normalise", "normalise", "normalise"]


def test_humanml3d_rule_moves_a_walking_clip_back_until_it_fits_the_view():
  t = np.linspace(0.0, 6.0, 20)
  pos = np.zeros((20, 1, 2, 3), np.float32)
  pos[:, 0, 0] = np.stack([t, np.full(20, 0.1), np.zeros(20)], -1)  # a foot walking 6 m in x
  pos[:, 0, 1] = np.stack([t, np.full(20, 1.7), np.zeros(20)], -1)  # the head above it
  out = camera.place(pos, "humanml3d")
  half = np.abs(out[..., 0]).max() / out[..., 2].min()
  np.testing.assert_allclose(half, 0.95 * np.tan(np.radians(30.0)), rtol=1e-5)  # just fits
  assert np.median(out[..., 2]) > 2.5


def _synthetic_nw_ucla_file(tmp_path):
  """NW-UCLA has no real sample here: a synthetic Kinect-v1 clip in its JSON layout."""
  from skel_llm.synthetic import generator
  rec = generator.generate_clip("wave right hand", 3, num_frames=40, topology="kinect20")
  path = tmp_path / "a05_s01_e00_v01.json"
  path.write_text(json.dumps({"file_name": path.stem, "label": 5,
                              "skeletons": rec.positions[:, 0].round(5).tolist()}))
  return path


# One file per parser (9 formats; NW-UCLA from the generator); Kinetics: an upright clip (the
# others show abseiling and parkour, where the head is below the feet for most frames).
REAL_FILES = ("ntu_skeleton/S001C003P008R002A058.skeleton", "pku_mmd/A10N08-L.txt",
              "kinetics_skeleton/__U_scuxNlQ.json", "humanml3d/new_joints/012314.npy",
              "humanml3d/new_joint_vecs/012314.npy", "coco17/test_coco.json",
              "h36m/test_h36m_body3d.npz", "h36m/test_h36m_2d_detection.npy",
              "bvh/131_01.bvh", "nw_ucla")


@pytest.mark.parametrize("name", REAL_FILES)
def test_auto_placement_puts_each_format_upright_in_front_of_the_camera(shared_data, tmp_path,
                                                                       name):
  from skel_llm import skeleton
  path = _synthetic_nw_ucla_file(tmp_path) if name == "nw_ucla" else shared_data / "real" / name
  rec = skeleton.load(path)
  topo = rec.topology
  pos = camera.place(rec.positions, "auto", topo, is_2d=rec.is_2d)[:, :2]  # the pipeline's P
  size, fov = 224, 60.0
  f = camera.focal_length(size, fov)
  head = list(topo.parts["head"])
  feet = [j for k in ("left_leg", "right_leg", "left_foot", "right_foot")
          for j in topo.parts.get(k, ())]
  for p in range(pos.shape[1]):
    q = pos[:, p][np.any(pos[:, p] != 0, axis=(-1, -2))]  # present frames [F, J, 3]
    if not len(q):
      continue
    assert (q[..., 2] > 0.5).all(), (name, p, "behind or at the camera")
    uv = np.asarray(camera.project(jnp.asarray(q), jnp.eye(3), size, fov)[0])
    inside = ((uv >= 0) & (uv <= size - 1)).all(axis=(-1, -2))
    # Raw Kinect metres are the sensor's own view: PKU's subject steps close to it in 2 of
    # 1040 frames and leaves a 60 degree view by a few pixels; every other rule fits all.
    need = 0.99 if camera.auto_rule(topo) == "kinect" else 1.0
    assert inside.mean() >= need, (name, p, inside.mean())
    if p == 0:  # the others may be partial detections (Kinetics: no legs in 2 frames)
      upright = uv[:, head, 1].mean(-1) < uv[:, feet, 1].mean(-1)  # image v grows downwards
      assert upright.mean() >= 0.95, (name, upright.mean())
      # Height from the projection: pixel extent x depth / focal length, frame by frame.
      metres = (uv[..., 1].max(-1) - uv[..., 1].min(-1)) * np.median(q[..., 2], -1) / f
      assert 1.15 <= np.percentile(metres, 90) <= 2.0, (name, np.percentile(metres, 90))


def test_every_format_of_one_clip_keeps_kinects_left_and_right():
  """The generator writes one clip in every format; placed by 'auto', the subject (facing the
  camera in Kinect's frame) keeps their left shoulder at -x in all of them. The release's
  HumanML3D rule shows SMPL-22 from behind (HumanML3D subjects face +z, away from the
  camera): left and right swapped."""
  from skel_llm.skeleton import topology
  from skel_llm.synthetic import formats, generator
  sides = {}
  for fmt in formats.FORMATS:
    rec = generator.generate_clip("raise left arm", 7, num_frames=30, topology=fmt)
    names = topology.get(fmt).joint_names
    p = camera.place(rec.positions, "auto", fmt)[:, 0]
    d = p[:, names.index("left_shoulder")] - p[:, names.index("right_shoulder")]
    sides[fmt] = float(np.sign(np.median(d[:, 0])))
    if fmt == "smpl22":
      back = camera.place(rec.positions, "humanml3d")[:, 0]
      d = back[:, names.index("left_shoulder")] - back[:, names.index("right_shoulder")]
      assert np.median(d[:, 0]) > 0  # seen from behind
  assert sides == {f: -1.0 for f in formats.FORMATS}, sides
