"""DrAction as pure functions: weights pytree -> per-Gaussian attributes -> frames.

Glossary: n frames, P persons (<= 2), J joints, K Gaussians per person,
G = P K Gaussians per frame, F feature width, S image side, B clips.

The weights are a plain pytree `{'params': ..., 'buffers': ...}`:

* `params` (trained, float32): `features [K, F]`; `appearance` (F->64->4 ReLU
  MLP: `w0 [F, 64]`, `b0`, `w1 [64, 4]`, `b1`); optional `nfm` (10->64->5:
  `w0 [10, 64]`, `b0`, `w1 [64, 5]`, `b1`); `depth_mix_logit []`; optional
  `gru` (10->10 over frames: `w_i [10, 30]`, `w_h [10, 30]`, `b_i [30]`,
  `b_h [30]`, gates in the order r, z, n); optional `blend_logits [K, J]`: trained blend
  logits (the `uniform` / `learnable` ablation rules, `layout.BLEND_RULES`), used instead of
  the buffer of that name.
* `buffers` (fixed): `canonical_joints [J, 3]`, `canonical_means [K, 3]`,
  `scales [K, 3]`, `quats [K, 4]`, `blend_logits [K, J]`.

Which optional parts exist is part of the pytree structure, hence static under
jit. Conventions: docs/method.md §2.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from skel_llm.render import camera, raster

Weights = dict[str, Any]


def _mlp(p: dict, x: jax.Array) -> jax.Array:
  h = jax.nn.relu(x @ p["w0"] + p["b0"])
  return h @ p["w1"] + p["b1"]


def _gru(p: dict, xs: jax.Array) -> jax.Array:
  """Hidden states float32[n, ..., H] of a GRU run over axis 0 of float32[n, ..., D], h0 = 0."""
  hidden = p["w_h"].shape[0]

  def step(h, x):
    gi = x @ p["w_i"] + p["b_i"]
    gh = h @ p["w_h"] + p["b_h"]
    r = jax.nn.sigmoid(gi[..., :hidden] + gh[..., :hidden])
    z = jax.nn.sigmoid(gi[..., hidden:2 * hidden] + gh[..., hidden:2 * hidden])
    cand = jnp.tanh(gi[..., 2 * hidden:] + r * gh[..., 2 * hidden:])
    h = (1.0 - z) * cand + z * h
    return h, h

  _, hs = jax.lax.scan(step, jnp.zeros(xs.shape[1:-1] + (hidden,), xs.dtype), xs)
  return hs


def blend_weights(buffers: dict, params: dict | None = None) -> jax.Array:
  """float32[K, J] = softmax(blend_logits): the trained ones in `params` if any, else the
  buffer's."""
  logits = (params or {}).get("blend_logits", buffers["blend_logits"])
  return jax.nn.softmax(logits, axis=-1)


def gaussian_attributes(weights: Weights, poses: jax.Array, vels: jax.Array,
                        valid: jax.Array | None = None):
  """Per-Gaussian geometry and appearance of one clip.

  Args:
    weights: `{'params', 'buffers'}`.
    poses: float32[n, P, J, 3] camera-space joints; an absent person is all zeros.
    vels: float32[n, P, J, 3] joint velocities (stride-4 differences).
    valid: optional bool[K]: False marks a pad Gaussian (a layout padded to a larger one,
      `skel_llm.render.mixed`): opacity 0 and left out of the depth-colour range, so the
      real Gaussians come out as without the pads.

  Returns:
    (means float32[n, P, K, 3], colour float32[n, P, K, 3], alpha float32[n, P, K]).
  """
  # The renderer computes in float32 whatever the caller's parameter dtype (docs/method.md §4).
  params, buffers = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32),
                                 (weights["params"], weights["buffers"]))
  w = blend_weights(buffers, params)
  rel = poses - buffers["canonical_joints"]
  means = buffers["canonical_means"] + jnp.einsum("kj,npjc->npkc", w, rel)
  raw = _mlp(params["appearance"], params["features"])  # [K, 4]
  rgb0 = jax.nn.sigmoid(raw[:, :3])
  a0 = jax.nn.sigmoid(raw[:, 3])
  n, p = poses.shape[:2]
  k = raw.shape[0]
  if "nfm" in params:
    pos = jnp.einsum("kj,npjc->npkc", w, poses)
    vel = jnp.einsum("kj,npjc->npkc", w, vels)
    feats = jnp.concatenate([pos, vel, jnp.broadcast_to(raw, (n, p, k, 4))], axis=-1)
    if "gru" in params:
      feats = _gru(params["gru"], feats)
    out = _mlp(params["nfm"], feats)
    rgb = jnp.clip(rgb0 + out[..., :3], 0.0, 1.0)
    alpha = jax.nn.sigmoid(a0 + out[..., 3]) * jax.nn.sigmoid(out[..., 4])
  else:
    rgb = jnp.broadcast_to(rgb0, (n, p, k, 3))
    alpha = jnp.broadcast_to(a0, (n, p, k))

  z = means[..., 2]
  if valid is None:
    zmin = jnp.min(z, axis=-1, keepdims=True)
    zmax = jnp.max(z, axis=-1, keepdims=True)
  else:
    zmin = jnp.min(jnp.where(valid, z, jnp.inf), axis=-1, keepdims=True)
    zmax = jnp.max(jnp.where(valid, z, -jnp.inf), axis=-1, keepdims=True)
  d = (z - zmin) / (zmax - zmin + 1e-6)
  depth_rgb = jnp.stack([d, 1.0 - 2.0 * jnp.abs(d - 0.5), 1.0 - d], axis=-1)
  lam = jax.nn.sigmoid(params["depth_mix_logit"])
  colour = (1.0 - lam) * rgb + lam * depth_rgb
  present = jnp.any(poses != 0, axis=(-1, -2))  # [n, P]
  alpha = jnp.where(present[..., None], alpha, 0.0)
  if valid is not None:
    alpha = jnp.where(valid, alpha, 0.0)
  return means, colour, alpha


def _frame(weights, means, colour, alpha, image_size, fov_deg, dense, tile, capacity, eps,
           cov=None):
  """One frame: float32[G, ...] Gaussians -> (image, overflow, pairs).

  `cov`: float32[G, 3, 3] of this frame's Gaussians (a mixed batch: each clip its own
  layout); None: the weights' buffers, tiled over the persons.
  """
  if cov is None:
    buffers = weights["buffers"]
    cov = camera.covariance3d(buffers["scales"], buffers["quats"])  # [K, 3, 3]
    persons = means.shape[0] // cov.shape[0]
    cov = jnp.tile(cov, (persons, 1, 1))
  uv, cov2d = camera.project(means, cov, image_size, fov_deg)
  order = jnp.argsort(means[:, 2], stable=True)
  uv, cov2d, alpha, colour = uv[order], cov2d[order], alpha[order], colour[order]
  con = camera.conic(cov2d)
  if dense:
    image = raster.composite_dense(uv, con, alpha, colour, image_size)
    return image, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)
  return raster.composite_tiled(uv, cov2d, con, alpha, colour, image_size, tile=tile,
                                capacity=capacity, eps=eps)


def _raster(weights, means, colour, alpha, *, image_size, fov_deg, dense, tile, capacity, eps,
            frames_per_step):
  """Frames of float32[F, G, ...] Gaussians, `frames_per_step` at a time, rematerialised.

  Each step is wrapped in `jax.checkpoint`, so the backward pass keeps only the
  (small) per-Gaussian inputs of every step and recomputes one step's pixel
  work at a time: peak memory is that of `frames_per_step` frames whatever the
  batch size.
  """
  step = jax.checkpoint(lambda m, c, a: _frame(weights, m, c, a, image_size, fov_deg, dense,
                                                tile, capacity, eps))
  if frames_per_step is None or frames_per_step >= means.shape[0]:
    return jax.vmap(step)(means, colour, alpha)
  return jax.lax.map(lambda args: step(*args), (means, colour, alpha), batch_size=frames_per_step)


def _clip_chunk(batch: int, num_frames: int, frames_per_step: int | None) -> int:
  """c: frames of every clip rasterised per step (c divides n; B c <= frames_per_step if any)."""
  if frames_per_step is None or batch * num_frames <= frames_per_step:
    return num_frames
  fits = [c for c in range(1, num_frames + 1)
          if num_frames % c == 0 and batch * c <= frames_per_step]
  return max(fits, default=1)


def _raster_clips(weights, means, colour, alpha, *, image_size, fov_deg, dense, tile, capacity,
                  eps, frames_per_step, cov=None):
  """Frames of float32[B, n, G, ...] Gaussians, B c frames per step, rematerialised.

  Each step takes the same c frames of every clip (c: `_clip_chunk`), so the loop runs over
  frames within a clip and the clip axis B stays a parallel axis of every step: when B is
  split over devices (data parallelism) each device renders its own clips with no
  communication. Looping over flattened B n frames instead would step through the
  device-split axis and make XLA move frames between devices at every step. A step holds
  B c frames, at least B (B / devices per device) even when `frames_per_step` is smaller.
  `cov`: float32[B, G, 3, 3] per clip (each clip its own layout), else from the buffers.
  """
  b, n = alpha.shape[:2]
  c = _clip_chunk(b, n, frames_per_step)
  step = jax.checkpoint(lambda m, co, a, *cv: _frame(weights, m, co, a, image_size, fov_deg,
                                                      dense, tile, capacity, eps, *cv))
  frames = jax.vmap(step)  # over B c frames, clip-major: the device split of B stays intact
  per_frame = (means, colour, alpha)
  if cov is not None:
    per_frame += (jnp.broadcast_to(cov[:, None], (b, n) + cov.shape[1:]),)
  # [B, n, ...] -> [n / c, B c, ...]: the loop axis leads, each step holds c frames per clip.
  xs = jax.tree.map(lambda a: a.reshape((b, n // c, c) + a.shape[2:]).swapaxes(0, 1).reshape(
      (n // c, b * c) + a.shape[2:]), per_frame)
  out = jax.lax.map(lambda args: frames(*args), xs)
  return jax.tree.map(lambda a: a.reshape((n // c, b, c) + a.shape[2:]).swapaxes(0, 1).reshape(
      (b, n) + a.shape[2:]), out)


def _check(weights, poses, vels):
  if poses.shape[-1] != 3 or vels.shape != poses.shape:
    raise ValueError(f"poses and vels must both be [..., n, P, J, 3], got {poses.shape}, "
                     f"{vels.shape}")
  j = weights["buffers"]["canonical_joints"].shape[0]
  if poses.shape[-2] != j:
    raise ValueError(f"poses have {poses.shape[-2]} joints, the renderer expects {j}")


_STATIC = ("image_size", "fov_deg", "dense", "tile", "capacity", "eps", "frames_per_step")


@functools.partial(jax.jit, static_argnames=_STATIC)
def render_with_stats(params: Weights, poses: jax.Array, vels: jax.Array, *, image_size: int,
                      fov_deg: float = 60.0, dense: bool = False, tile: int = raster.DEFAULT_TILE,
                      capacity: int | None = None, eps: float = raster.DEFAULT_EPS,
                      frames_per_step: int | None = None):
  """(frames float32[n, S, S, 3], overflow int32[n], pairs int32[n]) for one clip.

  `overflow[i]` counts the (tile, Gaussian) pairs of frame i dropped because
  the tiled path's capacity was exceeded (always 0 on the dense path); any
  non-zero value means that frame is not exact and should be reported.
  `frames_per_step` (None: all n at once) bounds the memory of the backward pass.
  """
  weights = params
  if poses.ndim != 4:
    raise ValueError(f"poses must be [n, P, J, 3], got {poses.shape}")
  _check(weights, poses, vels)
  means, colour, alpha = gaussian_attributes(weights, poses.astype(jnp.float32),
                                             vels.astype(jnp.float32))
  n, p, k = alpha.shape
  flat = lambda a: a.reshape((n, p * k) + a.shape[3:])  # noqa: E731
  return _raster(weights, flat(means), flat(colour), flat(alpha), image_size=image_size,
                 fov_deg=fov_deg, dense=dense, tile=tile, capacity=capacity, eps=eps,
                 frames_per_step=frames_per_step)


def render(params: Weights, poses: jax.Array, vels: jax.Array, *, image_size: int,
           fov_deg: float = 60.0, dense: bool = False, **kwargs) -> jax.Array:
  """float32[n, S, S, 3] frames in [0, 1] of already-selected frames.

  Args:
    params: the renderer weights `{'params', 'buffers'}`, e.g. from `load_released`.
    poses: float32[n, P, J, 3], P <= 2, an absent person all zeros.
    vels: float32[n, P, J, 3].
    image_size: S.
    fov_deg: horizontal (= vertical) field of view.
    dense: exact every-Gaussian-every-pixel path instead of the tiled one.
    **kwargs: tile, capacity, eps of the tiled path.
  """
  return render_with_stats(params, poses, vels, image_size=image_size, fov_deg=fov_deg,
                           dense=dense, **kwargs)[0]


@functools.partial(jax.jit, static_argnames=_STATIC)
def render_batch(params: Weights, poses: jax.Array, vels: jax.Array, *, image_size: int,
                 fov_deg: float = 60.0, dense: bool = False, tile: int = raster.DEFAULT_TILE,
                 capacity: int | None = None, eps: float = raster.DEFAULT_EPS,
                 frames_per_step: int | None = 12):
  """(frames float32[B, n, S, S, 3], overflow int32[B, n], pairs int32[B, n]) of B clips.

  poses, vels: float32[B, n, P, J, 3]. The B * n frames are rasterised at most
  `frames_per_step` at a time (default 12) and at least B at a time (the same frames of
  every clip, see `_raster_clips`) with rematerialisation, so forward+backward memory does
  not grow with B up to `frames_per_step` clips; with B split over devices, each device
  rasterises only its own clips' frames.
  """
  weights = params
  if poses.ndim != 5:
    raise ValueError(f"poses must be [B, n, P, J, 3], got {poses.shape}")
  _check(weights, poses, vels)
  means, colour, alpha = jax.vmap(lambda p, v: gaussian_attributes(weights, p, v))(
      poses.astype(jnp.float32), vels.astype(jnp.float32))
  b, n, p, k = alpha.shape
  flat = lambda a: a.reshape((b, n, p * k) + a.shape[4:])  # noqa: E731
  return _raster_clips(weights, flat(means), flat(colour), flat(alpha), image_size=image_size,
                       fov_deg=fov_deg, dense=dense, tile=tile, capacity=capacity, eps=eps,
                       frames_per_step=frames_per_step)
