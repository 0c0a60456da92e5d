"""Mixed-format batches: one renderer's trained parameters drawing clips of several topologies.

Glossary: B clips, n frames, P persons, M topologies of the mixture, J_t / K_t joints /
Gaussians of topology t, J / K the largest of them (the padded sizes), K_p the Gaussians of
the primary topology (the one the parameters live in), F feature width.

Design (issue 14, the joint-training row): the trained parameters stay in ONE topology, the
primary (`config.render.topology`); every other topology's Gaussians are derived from them
inside the step, differentiably, exactly the way the paper moves a trained renderer to another
format (`render.checkpoint.transfer`, docs/method.md §2): the appearance MLP, NFM, GRU and
depth mix are shared as they are, and the per-Gaussian features are interpolated linearly per
bank (joint bank to J_t rows, bone bank to the target's bone-sample count). Interpolation is
linear, so it is a fixed matrix `feature_maps[t]` float32[K, K_p] (`transfer` applied to the
identity); `features_t = feature_maps[t] @ features` carries the gradient of topology t's rows
back to the shared features. Why not per-topology banks: the paper's method has one set of
features and a fixed, topology-derived layout (its transfer result is what cross-format
evaluation reads), so (1) a mixed run still exports as one released-format renderer of the
primary topology, (2) the cross-format evaluator's `transfer_to` of the trained renderer gives
exactly the renderer the run trained its other-topology rows with (tested), and (3) every
topology's rows train the same features, which separate banks would split.

Static shapes: each topology's layout (the primary's own buffers, `checkpoint.target_layout`
for the others: SMPL-22 with the authors' proportional samples) is padded to K Gaussians and
J joints. Pad joints get blend weight exactly 0 (logit -1e4); pad Gaussians sit on joint 0
(finite geometry) with opacity 0 and are left out of the depth-colour range
(`renderer.gaussian_attributes(valid=...)`), so a row renders as it would alone with its own
topology's renderer. Each batch row carries `topology` int32 (its index in `topologies`) and
poses zero-padded to J joints; rows are gathered per clip, so the clip axis stays the only
split axis (data parallelism unchanged).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from skel_llm.render import camera, checkpoint, raster, renderer
from skel_llm.skeleton import topology as topology_lib

_NEG_LOGIT = -1.0e4
_PAD_SCALE = 0.01  # any positive radius: a pad Gaussian is never drawn (opacity 0)


def feature_map(source_joints: int, source_samples_per_bone, target_joints: int,
                target_bone_samples: int) -> np.ndarray:
  """float32[J_t + S_t, J_s + S_s]: `checkpoint.transfer`'s feature interpolation as a matrix
  (joint bank and bone bank separately; `_resample` is linear, applied to the identity)."""
  bone_rows = int(sum(source_samples_per_bone))
  joint = checkpoint._resample(np.eye(source_joints), target_joints)
  bone = checkpoint._resample(np.eye(bone_rows), target_bone_samples)
  out = np.zeros((target_joints + target_bone_samples, source_joints + bone_rows))
  out[:target_joints, :source_joints] = joint
  out[target_joints:, source_joints:] = bone
  return out.astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class MixedLayouts:
  """The static part of a mixed-format renderer (hashed by identity: a jit static argument).

  Attributes:
    topologies: registry names, index t = a batch row's `topology` value.
    primary: index of the topology the trained parameters live in.
    num_joints: J (the largest J_t). num_gaussians: K (the largest K_t).
    layouts: per topology its `GaussianLayout` (None for the primary: the renderer's own
      buffers are used, so a loaded checkpoint's buffers are honoured).
    feature_maps: float32[M, K, K_p] (zero rows for pad Gaussians; identity for the primary).
    valid: bool[M, K], False for pad Gaussians.
  """

  topologies: tuple[str, ...]
  primary: int
  num_joints: int
  num_gaussians: int
  layouts: tuple
  feature_maps: np.ndarray
  valid: np.ndarray

  @property
  def num_topologies(self) -> int:
    return len(self.topologies)


def build(primary: str, primary_samples_per_bone, topologies) -> MixedLayouts:
  """`MixedLayouts` for a renderer of `primary` (its samples per bone) drawing `topologies`.

  Raises naming `config.data.topologies` when the primary is not among them, a name is
  unknown or repeated, or a topology has no bones (the bone bank has nowhere to go).
  """
  topologies = tuple(topologies)
  known = topology_lib.names()
  for name in topologies:
    if name not in known:
      raise ValueError(f"config.data.topologies: {name!r} is unknown; use names of {known}")
  if len(set(topologies)) != len(topologies):
    raise ValueError(f"config.data.topologies {topologies} names a topology twice")
  if primary not in topologies:
    raise ValueError(f"config.data.topologies {topologies} must include config.render.topology "
                     f"{primary!r} (the topology the renderer's parameters live in)")
  p_topo = topology_lib.get(primary)
  spb = tuple(int(v) for v in primary_samples_per_bone)
  if len(spb) != p_topo.num_bones:
    raise ValueError(f"primary {primary}: {len(spb)} samples-per-bone entries for "
                     f"{p_topo.num_bones} bones")
  k_p = p_topo.num_joints + sum(spb)
  layouts, sizes = [], []
  for name in topologies:
    if name == primary:
      layouts.append(None)
      sizes.append((p_topo.num_joints, k_p))
    else:
      try:
        lay = checkpoint.target_layout(name)
      except ValueError as e:
        raise ValueError(f"config.data.topologies: {e}") from None
      layouts.append(lay)
      sizes.append((lay.num_joints, lay.num_gaussians))
  j_max = max(j for j, _ in sizes)
  k_max = max(k for _, k in sizes)
  maps = np.zeros((len(topologies), k_max, k_p), np.float32)
  valid = np.zeros((len(topologies), k_max), bool)
  for t, (lay, (_, k)) in enumerate(zip(layouts, sizes)):
    if lay is None:
      maps[t, :k_p] = np.eye(k_p, dtype=np.float32)
    else:
      maps[t, :k] = feature_map(p_topo.num_joints, spb, lay.num_joints,
                                sum(lay.samples_per_bone))
    valid[t, :k] = True
  return MixedLayouts(topologies=topologies, primary=topologies.index(primary),
                      num_joints=j_max, num_gaussians=k_max, layouts=tuple(layouts),
                      feature_maps=maps, valid=valid)


def pad_buffers(buffers: dict, num_joints: int, num_gaussians: int):
  """Buffers padded to J joints and K Gaussians (pads: on joint 0, radius 0.01, identity
  rotation; pad joints weight 0). Works on numpy and traced arrays alike."""
  k, j = buffers["blend_logits"].shape
  dk, dj = num_gaussians - k, num_joints - j
  pad = lambda x, rows, value=0.0: jnp.pad(  # noqa: E731
      jnp.asarray(x, jnp.float32), ((0, rows),) + ((0, 0),) * (x.ndim - 1),
      constant_values=value)
  logits = jnp.pad(jnp.asarray(buffers["blend_logits"], jnp.float32), ((0, 0), (0, dj)),
                   constant_values=_NEG_LOGIT)
  pad_rows = jnp.full((dk, num_joints), _NEG_LOGIT, jnp.float32).at[:, 0].set(0.0)
  quats = pad(buffers["quats"], dk)
  quats = quats.at[k:, 0].set(1.0)
  return {
      "canonical_joints": pad(buffers["canonical_joints"], dj),
      "canonical_means": jnp.concatenate(
          [jnp.asarray(buffers["canonical_means"], jnp.float32),
           jnp.broadcast_to(jnp.asarray(buffers["canonical_joints"], jnp.float32)[0], (dk, 3))]),
      "scales": pad(buffers["scales"], dk, _PAD_SCALE),
      "quats": quats,
      "blend_logits": jnp.concatenate([logits, pad_rows]),
  }


def topology_weights(weights: dict, mixed: MixedLayouts) -> dict:
  """Every topology's padded renderer weights, stacked: params with `features` float32[M, K, F]
  (derived from the primary's, differentiably) and the shared MLPs; buffers float32[M, K, ...]."""
  params = weights["params"]
  feats = jnp.asarray(params["features"], jnp.float32)
  if feats.shape[0] != mixed.feature_maps.shape[2]:
    raise ValueError(f"renderer has {feats.shape[0]} Gaussians, the mixed layouts were built "
                     f"for {mixed.feature_maps.shape[2]} (primary "
                     f"{mixed.topologies[mixed.primary]})")
  per_topo = []
  for lay in mixed.layouts:
    source = weights["buffers"] if lay is None else lay.buffers()
    per_topo.append(pad_buffers(source, mixed.num_joints, mixed.num_gaussians))
  buffers = jax.tree.map(lambda *xs: jnp.stack(xs), *per_topo)
  features = jnp.einsum("mkq,qf->mkf", jnp.asarray(mixed.feature_maps), feats)
  return {"params": dict(params, features=features), "buffers": buffers}


def row_weights(weights: dict, mixed: MixedLayouts, topology: jax.Array):
  """(per-row weights `{'params', 'buffers'}` with leading B on features and buffers,
  valid bool[B, K]) for rows whose topology indices are int32[B]."""
  stacked = topology_weights(weights, mixed)
  take = lambda x: jnp.take(x, topology, axis=0)  # noqa: E731
  params = dict(stacked["params"], features=take(stacked["params"]["features"]))
  return ({"params": params, "buffers": jax.tree.map(take, stacked["buffers"])},
          take(jnp.asarray(mixed.valid)))


_STATIC = ("mixed", "image_size", "fov_deg", "dense", "tile", "capacity", "eps",
           "frames_per_step")


@functools.partial(jax.jit, static_argnames=_STATIC)
def render_batch(weights: dict, topology: jax.Array, poses: jax.Array, vels: jax.Array, *,
                 mixed: MixedLayouts, image_size: int, fov_deg: float = 60.0,
                 dense: bool = False, tile: int = raster.DEFAULT_TILE,
                 capacity: int | None = None, eps: float = raster.DEFAULT_EPS,
                 frames_per_step: int | None = 12):
  """(frames float32[B, n, S, S, 3], overflow int32[B, n], pairs int32[B, n]) of a mixed batch.

  Args:
    weights: the primary topology's renderer weights `{'params', 'buffers'}`.
    topology: int32[B], each row's index into `mixed.topologies`.
    poses, vels: float32[B, n, P, J, 3], each row's joints first, zero-padded to J.
    mixed: the static `MixedLayouts`.
    Others as `renderer.render_batch`.
  """
  if poses.ndim != 5 or poses.shape != vels.shape:
    raise ValueError(f"poses and vels must both be [B, n, P, J, 3], got {poses.shape}, "
                     f"{vels.shape}")
  if poses.shape[-2] != mixed.num_joints:
    raise ValueError(f"mixed batch poses have {poses.shape[-2]} joints, the mixture of "
                     f"{mixed.topologies} pads to {mixed.num_joints}")
  rows, valid = row_weights(weights, mixed, jnp.asarray(topology, jnp.int32))
  shared = {k: v for k, v in rows["params"].items() if k != "features"}

  def one(features, buffers, ok, p, v):
    w = {"params": dict(shared, features=features), "buffers": buffers}
    return renderer.gaussian_attributes(w, p, v, valid=ok)

  means, colour, alpha = jax.vmap(one)(rows["params"]["features"], rows["buffers"], valid,
                                       poses.astype(jnp.float32), vels.astype(jnp.float32))
  b, n, p, k = alpha.shape
  cov = jax.vmap(camera.covariance3d)(rows["buffers"]["scales"], rows["buffers"]["quats"])
  cov = jnp.tile(cov, (1, p, 1, 1))  # [B, P K, 3, 3], person-major like the means
  flat = lambda a: a.reshape((b, n, p * k) + a.shape[4:])  # noqa: E731
  return renderer._raster_clips(weights, flat(means), flat(colour), flat(alpha),
                                image_size=image_size, fov_deg=fov_deg, dense=dense, tile=tile,
                                capacity=capacity, eps=eps, frames_per_step=frames_per_step,
                                cov=cov)


def pad_joints(positions: np.ndarray, num_joints: int) -> np.ndarray:
  """float32[..., J_t, 3] -> float32[..., J, 3], zero joints appended (host side)."""
  positions = np.asarray(positions, np.float32)
  extra = num_joints - positions.shape[-2]
  if extra < 0:
    raise ValueError(f"clip has {positions.shape[-2]} joints, more than the mixture's "
                     f"{num_joints}")
  if extra == 0:
    return positions
  width = [(0, 0)] * positions.ndim
  width[-2] = (0, extra)
  return np.pad(positions, width)
