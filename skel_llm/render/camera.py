"""The DrAction camera: pinhole projection, screen covariances, view augmentation, placement.

Glossary: G Gaussians of one frame (all persons), J joints, P persons, T frames.

Conventions (docs/method.md §2): identity
extrinsics, field of view `fov_deg` (60 by default) on an S x S image,
`f = S / (2 tan(fov / 2))`, `u = f X / Z + S / 2`, `v = -f Y / Z + S / 2` with
Z clamped to >= 1e-4; pixel centres at integer coordinates 0..S-1. A 3D
covariance maps to the screen as `J Sigma J^T + 1e-5 I` with the perspective
Jacobian J of that projection.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from skel_llm.skeleton import sampling
from skel_llm.skeleton import topology as topology_lib

MIN_DEPTH = 1e-4
SCREEN_EPS = 1e-5


def focal_length(image_size: int, fov_deg: float = 60.0) -> float:
  return image_size / (2.0 * math.tan(math.radians(fov_deg) / 2.0))


def quat_to_matrix(quats: jax.Array) -> jax.Array:
  """float32[..., 3, 3] rotation matrices of (w, x, y, z) quaternions (normalised first)."""
  q = quats / jnp.maximum(jnp.linalg.norm(quats, axis=-1, keepdims=True), 1e-12)
  w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
  rows = [
      [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
  ]
  return jnp.stack([jnp.stack(r, axis=-1) for r in rows], axis=-2)


def covariance3d(scales: jax.Array, quats: jax.Array) -> jax.Array:
  """float32[K, 3, 3] `R diag(s^2) R^T` from scales float32[K, 3] and quats float32[K, 4]."""
  r = quat_to_matrix(quats)
  return jnp.einsum("kij,kj,klj->kil", r, scales * scales, r)


def project(means: jax.Array, cov3d: jax.Array, image_size: int, fov_deg: float = 60.0):
  """Screen-space Gaussians of camera-space means.

  Args:
    means: float32[..., 3] camera-space centres (metres, +z away from the camera).
    cov3d: float32[..., 3, 3] camera-space covariances (broadcast against means).

  Returns:
    (uv float32[..., 2] pixel coordinates, cov2d float32[..., 2, 2]).
  """
  f = focal_length(image_size, fov_deg)
  x, y = means[..., 0], means[..., 1]
  z = jnp.maximum(means[..., 2], MIN_DEPTH)
  half = image_size / 2.0
  uv = jnp.stack([f * x / z + half, -f * y / z + half], axis=-1)
  zero = jnp.zeros_like(z)
  jac = jnp.stack([
      jnp.stack([f / z, zero, -f * x / (z * z)], axis=-1),
      jnp.stack([zero, -f / z, f * y / (z * z)], axis=-1),
  ], axis=-2)
  cov2d = jnp.einsum("...ij,...jk,...lk->...il", jac, cov3d, jac)
  cov2d = cov2d + SCREEN_EPS * jnp.eye(2, dtype=cov2d.dtype)
  return uv, cov2d


def conic(cov2d: jax.Array) -> jax.Array:
  """float32[..., 3] (a, b, c) of the inverse `[[a, b], [b, c]]` of float32[..., 2, 2]."""
  a, b, c = cov2d[..., 0, 0], cov2d[..., 0, 1], cov2d[..., 1, 1]
  det = a * c - b * b
  return jnp.stack([c / det, -b / det, a / det], axis=-1)


def rotation_about_y(angle: jax.Array) -> jax.Array:
  """float32[3, 3] rotation by `angle` radians about the vertical (+y) axis."""
  c, s = jnp.cos(angle), jnp.sin(angle)
  one, zero = jnp.ones_like(c), jnp.zeros_like(c)
  return jnp.stack([jnp.stack([c, zero, s]), jnp.stack([zero, one, zero]),
                    jnp.stack([-s, zero, c])])


def random_view_rotation(rng: jax.Array, poses: jax.Array, vels: jax.Array,
                         max_deg: float = 30.0) -> tuple[jax.Array, jax.Array]:
  """Training augmentation: turn the whole clip about a vertical axis through its centre.

  Jit-safe. The angle is uniform in [-max_deg, max_deg]; the pivot is the mean
  of the present joints (all-zero persons stay all zero), so the subjects stay
  in view and keep their distance to the camera.

  Args:
    rng: a PRNG key.
    poses: float32[n, P, J, 3]; vels: float32[n, P, J, 3].
  """
  angle = jax.random.uniform(rng, (), minval=-1.0, maxval=1.0) * math.radians(max_deg)
  rot = rotation_about_y(angle)
  present = jnp.any(poses != 0, axis=(-1, -2), keepdims=True)  # [n, P, 1, 1]
  weight = jnp.broadcast_to(present, poses.shape[:-1] + (1,)).astype(poses.dtype)
  centre = jnp.sum(poses * weight, axis=(0, 1, 2)) / jnp.maximum(jnp.sum(weight), 1.0)
  new_poses = jnp.where(present, (poses - centre) @ rot.T + centre, poses)
  new_vels = jnp.where(present, vels @ rot.T, vels)
  return new_poses, new_vels


# The `normalise` rule's target: the first person this tall (joint span, 1st-99th percentile of
# its heights), the scene centre this far in front of the camera.
PERSON_HEIGHT_M = 1.7
DEPTH_M = 3.5
RULES = ("auto", "kinect", "humanml3d", "humanml3d_front", "normalise", "none")


def place_kinect(positions: np.ndarray) -> np.ndarray:
  """Raw Kinect metres: z + 1 for present skeletons only when their median z < 0.5."""
  return sampling.depth_shift(positions, threshold=0.5, shift=1.0)


def place_humanml3d(positions: np.ndarray, depth: float = 2.5, fit_fov_deg: float = 60.0
                    ) -> np.ndarray:
  """HumanML3D (y-up metres, origin at the floor under the root): centre y, median depth `depth`.

  The release centres y on the median and moves the median depth to 2.5 m. HumanML3D clips
  walk (the sample 012314 travels 3 m sideways), so we also centre x on the middle of the
  clip's x range and, when a joint would still leave a `fit_fov_deg` view (5% margin), move
  the clip back just far enough; a clip that stays in view is placed as by the release
  except for the x centring.

  Args:
    positions: float32[T, P, J, 3]; all-zero persons are left untouched.
  """
  positions = np.asarray(positions, np.float32)
  present = np.any(positions != 0, axis=(-1, -2))
  if not present.any():
    return positions
  pts = positions[present].reshape(-1, 3)  # [N * J, 3]
  x = pts[:, 0] - 0.5 * (pts[:, 0].max() + pts[:, 0].min())
  y = pts[:, 1] - np.median(pts[:, 1])
  rel_z = pts[:, 2] - np.median(pts[:, 2])
  half = 0.95 * math.tan(math.radians(fit_fov_deg) / 2.0)
  # Joint i is in view at median depth d when max(|x_i|, |y_i|) <= half * (d + rel_z_i).
  needed = float(np.max(np.maximum(np.abs(x), np.abs(y)) / half - rel_z))
  d = max(depth, needed)
  shift = np.array([x[0] - pts[0, 0], -np.median(pts[:, 1]), d - np.median(pts[:, 2])],
                   np.float32)
  return np.where(present[..., None, None], positions + shift, positions).astype(np.float32)


def place_humanml3d_front(positions: np.ndarray) -> np.ndarray:
  """Half a turn about the vertical axis, then `place_humanml3d` (centring and view fit).

  HumanML3D subjects face +z, away from the camera, so the release's rule shows them from
  behind, left and right swapped against the front view Kinect data gives; turned, they face
  the camera as NTU subjects do (ours; 'auto' for SMPL-22).
  """
  pos = np.asarray(positions, np.float32)
  present = np.any(pos != 0, axis=(-1, -2))
  turned = np.where(present[..., None, None], pos * np.array([-1.0, 1.0, -1.0], np.float32), pos)
  return place_humanml3d(turned)


def place_normalised(positions: np.ndarray, up_axis: str, is_2d: bool) -> np.ndarray:
  """Any units and up axis (2D, pixels, [0, 1], cm, z-up): +y up, centred, first person 1.7 m.

  The clip is turned +y-up (y-down frames by a half turn about z, so left and right stay as
  in Kinect data), centred on the median of its present joints and scaled so that
  the first person's height (1st to 99th percentile of its joints' heights over the clip) is
  `PERSON_HEIGHT_M`; its centre goes `DEPTH_M` in front of the camera (2D clips: every joint
  at that depth). A joint at exactly (0, 0, 0) inside a present person is a missing
  detection (OpenPose / COCO write undetected keypoints so): it is left out of the
  statistics and put on the mean of that person's detected joints in that frame, instead of
  at the image corner the zeros would map to.
  """
  pos = np.asarray(positions, np.float32)
  present = np.any(pos != 0, axis=(-1, -2))  # [T, P]
  detected = np.any(pos != 0, axis=-1)  # [T, P, J]
  out = pos.copy()
  if up_axis == "-y":
    # A half turn about the viewing axis (a rotation; negating y alone would mirror the
    # clip): image and y-down camera frames then match Kinect's, where a subject facing the
    # camera has their right side at +x, as the renderer sees NTU data.
    out[..., :2] = -out[..., :2]
  elif up_axis == "+z":
    out = out[..., [0, 2, 1]] * np.array([1, 1, -1], np.float32)
  elif up_axis != "+y":
    raise ValueError(f"up axis {up_axis!r}: expected '+y', '-y' or '+z'")
  pts = out[detected]  # [N, 3]
  if pts.size == 0:
    return pos
  first = out[:, 0][detected[:, 0]] if detected[:, 0].any() else pts
  height = float(np.percentile(first[:, 1], 99) - np.percentile(first[:, 1], 1))
  scale = PERSON_HEIGHT_M / max(height, 1e-6)
  centre = np.median(pts, axis=0)
  out = (out - centre) * scale
  out[..., 2] = out[..., 2] + DEPTH_M if not is_2d else DEPTH_M
  w = detected[..., None].astype(np.float32)
  body = np.sum(out * w, axis=-2, keepdims=True) / np.maximum(np.sum(w, axis=-2, keepdims=True),
                                                               1.0)
  out = np.where(detected[..., None], out, body)
  return np.where(present[..., None, None], out, 0.0).astype(np.float32)


def auto_rule(topology) -> str:
  """The placement rule of a topology (`Topology` or registry name) by its units and up axis.

  Metric 3D y-up formats keep raw metres (`kinect`), SMPL-22 follows the HumanML3D rule
  turned to face the camera (`humanml3d_front`), anything else (2D, pixels, normalised, cm, other up axes, BVH units) is `normalise`d.
  """
  topo = _topology(topology)
  if topo.units == "m" and not topo.is_2d and topo.up_axis == "+y":
    return "humanml3d_front" if topo.name == "smpl22" else "kinect"
  return "normalise"


def _topology(topology):
  if isinstance(topology, str):
    return topology_lib.get(topology)
  if topology is None or not hasattr(topology, "up_axis"):
    raise ValueError(f"placement needs the clip's topology (a Topology or a registry name), "
                     f"got {topology!r}")
  return topology


def place(positions: np.ndarray, rule: str, topology=None, *, is_2d: bool | None = None
          ) -> np.ndarray:
  """float32[T, P, J, 3] in camera metres (+y up, +z away) by a placement rule.

  Args:
    positions: float32[T, P, J, 3] in the source's units; all-zero persons stay all zero.
    rule: one of `RULES`: 'auto' (by the topology, `auto_rule`), 'kinect', 'humanml3d'
      (the release's), 'humanml3d_front' (turned to face the camera), 'normalise' or 'none'
      (already camera metres).
    topology: a `Topology` or registry name; needed by 'auto' and 'normalise'.
    is_2d: the positions carry no depth (default: the topology's flag).
  """
  if rule not in RULES:
    raise ValueError(f"unknown placement rule {rule!r}; known: {list(RULES)}")
  if rule == "auto":
    rule = auto_rule(topology)
  if rule == "kinect":
    return place_kinect(positions)
  if rule == "humanml3d":
    return place_humanml3d(positions)
  if rule == "humanml3d_front":
    return place_humanml3d_front(positions)
  if rule == "none":
    return np.asarray(positions, np.float32)
  topo = _topology(topology)
  return place_normalised(positions, topo.up_axis, topo.is_2d if is_2d is None else bool(is_2d))
