"""Fixed (untrained) renderers for ablations, with DrAction's output shape float32[n, S, S, 3].

Glossary: n frames, P persons, J joints, K Gaussians per person, S image side.

* `render_velocity_colour`: "3D + velocity" colour coding. The same Gaussian
  layout, camera and compositing as DrAction, but fixed colours: red = depth
  within the person (near 0, far 1), green = joint speed relative to the
  clip's fastest Gaussian, blue = 1 - depth; opacity 0.9. No parameters.
* `render_stick_figure`: the plain 2D projection. Bones drawn as 1-pixel
  anti-aliased segments of width `thickness` (left side red, right side blue,
  centre white), joints as dots; the brightest bone wins at each pixel.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from skel_llm.render import camera, layout as layout_lib, raster, renderer
from skel_llm.skeleton import topology as topology_lib

LEFT, RIGHT, CENTRE = (1.0, 0.35, 0.3), (0.3, 0.55, 1.0), (1.0, 1.0, 1.0)


def _layout_buffers(topology: str, samples_per_bone) -> dict:
  lay = layout_lib.build_layout(topology, samples_per_bone=samples_per_bone)
  return {k: jnp.asarray(v) for k, v in lay.buffers().items()}


@functools.partial(jax.jit, static_argnames=("image_size", "fov_deg", "topology",
                                             "samples_per_bone", "dense"))
def render_velocity_colour(poses: jax.Array, vels: jax.Array, *, image_size: int,
                           fov_deg: float = 60.0, topology: str = "ntu25",
                           samples_per_bone: int = 10, dense: bool = False) -> jax.Array:
  """float32[n, S, S, 3] "3D + velocity" frames of poses, vels float32[n, P, J, 3]."""
  return velocity_colour_frames(_layout_buffers(topology, samples_per_bone), poses, vels,
                                image_size=image_size, fov_deg=fov_deg, dense=dense)


def velocity_colour_frames(buffers: dict, poses: jax.Array, vels: jax.Array, *,
                           image_size: int, fov_deg: float = 60.0,
                           dense: bool = False, tile: int = raster.DEFAULT_TILE,
                           capacity: int | None = None, with_stats: bool = False):
  """`render_velocity_colour` on a layout's buffers (`GaussianLayout.buffers()`, or a
  DrAction weights pytree's `buffers`) instead of a topology name. `with_stats`: return
  (frames, overflow int32[n]), the tiled path's dropped pairs per frame (`render_with_stats`)."""
  w = jax.nn.softmax(buffers["blend_logits"], axis=-1)
  means = jnp.einsum("kj,npjc->npkc", w, poses)
  speed = jnp.linalg.norm(jnp.einsum("kj,npjc->npkc", w, vels), axis=-1)
  speed = speed / (jnp.max(speed) + 1e-6)
  z = means[..., 2]
  zmin, zmax = jnp.min(z, -1, keepdims=True), jnp.max(z, -1, keepdims=True)
  d = (z - zmin) / (zmax - zmin + 1e-6)
  colour = jnp.stack([d, speed, 1.0 - d], axis=-1)
  present = jnp.any(poses != 0, axis=(-1, -2))
  alpha = jnp.where(present[..., None], 0.9, 0.0) * jnp.ones_like(d)
  n, p, k = alpha.shape
  flat = lambda a: a.reshape((n, p * k) + a.shape[3:])  # noqa: E731
  weights = {"params": {}, "buffers": buffers}
  frames, overflow, _ = renderer._raster(weights, flat(means), flat(colour), flat(alpha),
                                         image_size=image_size, fov_deg=fov_deg, dense=dense,
                                         tile=tile, capacity=capacity,
                                         eps=raster.DEFAULT_EPS, frames_per_step=None)
  return (frames, overflow) if with_stats else frames


def _bone_colours(topo: topology_lib.Topology) -> np.ndarray:
  left = {a for a, _ in topo.left_right}
  right = {b for _, b in topo.left_right}
  out = []
  for a, b in topo.bones:
    if a in left or b in left:
      out.append(LEFT)
    elif a in right or b in right:
      out.append(RIGHT)
    else:
      out.append(CENTRE)
  return np.asarray(out, np.float32)


@functools.partial(jax.jit, static_argnames=("image_size", "fov_deg", "topology", "thickness"))
def render_stick_figure(poses: jax.Array, *, image_size: int, fov_deg: float = 60.0,
                        topology: str = "ntu25", thickness: float = 2.0) -> jax.Array:
  """float32[n, S, S, 3] stick figures of poses float32[n, P, J, 3] (absent persons skipped)."""
  topo = topology_lib.get(topology)
  bones = np.asarray(topo.bones, np.int32)
  colours = jnp.asarray(_bone_colours(topo))
  s = image_size
  uv, _ = camera.project(poses, jnp.zeros(poses.shape + (3,)), s, fov_deg)  # [n, P, J, 2]
  present = jnp.any(poses != 0, axis=(-1, -2))  # [n, P]
  grid = jnp.stack(jnp.meshgrid(jnp.arange(s, dtype=jnp.float32),
                                jnp.arange(s, dtype=jnp.float32), indexing="xy"), -1)

  def frame(args):
    uv_f, present_f = args  # [P, J, 2], [P]
    a, b = uv_f[:, bones[:, 0]], uv_f[:, bones[:, 1]]  # [P, Bn, 2]
    ab = b - a
    ap = grid[:, :, None, None, :] - a  # [S, S, P, Bn, 2]
    t = jnp.clip(jnp.sum(ap * ab, -1) / jnp.maximum(jnp.sum(ab * ab, -1), 1e-6), 0.0, 1.0)
    dist = jnp.linalg.norm(ap - t[..., None] * ab, axis=-1)
    ink = jnp.clip(0.5 * thickness + 0.5 - dist, 0.0, 1.0) * present_f[:, None]
    # Joints: dots of diameter thickness + 1.
    dj = jnp.linalg.norm(grid[:, :, None, None, :] - uv_f, axis=-1)  # [S, S, P, J]
    dots = jnp.clip(0.5 * thickness + 1.0 - dj, 0.0, 1.0) * present_f[:, None]
    img = jnp.max(ink[..., None] * colours, axis=(2, 3))
    return jnp.maximum(img, jnp.max(dots, axis=(2, 3))[..., None])

  return jax.lax.map(frame, (uv, present))
