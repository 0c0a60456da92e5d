"""The teacher's view of a clip: frames rendered exactly as training renders them.

Same renderer weights (a stage-2 run's latest checkpoint, its exported
`export/draction.safetensors`, or a released `.safetensors`), same `config.render`
(frames, size, field of view, dense/tiled, tile side and capacity, velocity stride), same
padding to `config.data.max_frames` / `max_persons`, and the midpoint frame selection that
evaluation uses (`SkeletonLLM.render` with rng None).
"""

from __future__ import annotations

import hashlib
import logging

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from skel_llm import fs
from skel_llm.render import frames as frames_lib
from skel_llm.render import raster

log = logging.getLogger(__name__)


def load_renderer(config, path: str):
  """(DrAction module, sha256 of its weights) from a run workdir or a `.safetensors` file."""
  from skel_llm import render
  from skel_llm.train import build, checkpoint
  r = config.render
  if not path:
    raise ValueError("--renderer is empty; give the stage-2 --workdir or a draction "
                     ".safetensors file")
  if fs.isfile(path):  # local or gs://
    if not path.endswith(".safetensors"):
      raise ValueError(f"--renderer {path}: expected a run folder or a .safetensors file")
    local = render.checkpoint.local_release(path)  # local or gs://
    try:
      module = render.DrAction.from_released(local, topology=r.topology)
    except ValueError as e:
      raise ValueError(f"--renderer {path} does not fit config.render.topology "
                       f"{r.topology!r}: {e}") from e
  elif fs.isdir(path):
    ckpt = fs.join(path, "checkpoints")
    exported = fs.join(path, "export", "draction.safetensors")
    if fs.isdir(ckpt):
      module = build.renderer_factory(config)(nnx.Rngs(params=config.seed))
      abstract = jax.tree.map(
          lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                         sharding=jax.sharding.SingleDeviceSharding(
                                             jax.devices()[0])),
          nnx.to_pure_dict(nnx.state(module)))
      try:
        restored, missing = checkpoint.restore_variables_from(path, {"renderer": abstract})
      except ValueError as e:
        raise ValueError(f"--renderer {path}: its renderer does not fit config.render "
                         f"(topology {r.topology!r}, {config.data.max_persons} persons): {e}"
                         ) from e
      if missing:
        raise ValueError(f"--renderer {path}: the checkpoint lacks renderer variables "
                         f"{missing[:4]}; is it a skel_llm run of this config?")
      nnx.update(module, restored["renderer"])
    elif fs.isfile(exported):
      return load_renderer(config, exported)
    else:
      raise FileNotFoundError(f"--renderer {path}: no checkpoints/ or export/"
                              f"draction.safetensors in it")
  else:
    raise FileNotFoundError(f"--renderer {path} does not exist")
  return module, weights_sha256(module)


def weights_sha256(module) -> str:
  h = hashlib.sha256()
  leaves = jax.tree_util.tree_flatten_with_path(module.weights())[0]
  for p, leaf in sorted(leaves, key=lambda kv: jax.tree_util.keystr(kv[0])):
    a = np.ascontiguousarray(np.asarray(leaf, np.float32))
    h.update(jax.tree_util.keystr(p).encode())
    h.update(a.tobytes())
  return h.hexdigest()


class ClipRenderer:
  """Batched, jitted: clips float32[T, P, J, 3] -> uint8[n, S, S, 3] frames each.

  `dropped`: {clip id: (tile, Gaussian) pairs the tiled rasteriser dropped} of the clips whose
  frames are not exact (each logged as a warning when drawn), as training reports them.
  """

  def __init__(self, config, module, batch: int = 16):
    r, d = config.render, config.data
    self.batch = int(batch)  # fixed: one compilation
    self.max_frames, self.max_persons = int(d.max_frames), int(d.max_persons)
    self.joints = int(np.shape(module.weights()["buffers"]["blend_logits"])[1])
    graphdef, state = nnx.split(module)
    n, size, fov, dense, stride = (int(r.num_frames), int(r.image_size), float(r.fov_deg),
                                   bool(r.dense), int(r.velocity_stride))
    tile = int(r.get("tile", raster.DEFAULT_TILE))
    capacity = int(r.get("capacity", 0)) or None
    self.dropped: dict[str, int] = {}

    @jax.jit
    def frames(state, positions, lengths):
      renderer = nnx.merge(graphdef, state)
      poses, vels, _ = frames_lib.select_frames_batch(positions, lengths, n, rng=None,
                                                      stride=stride)
      out, overflow, _ = renderer(poses, vels, image_size=size, fov_deg=fov, dense=dense,
                                  tile=tile, capacity=capacity, with_stats=True)
      return (jnp.round(jnp.clip(out, 0.0, 1.0) * 255.0).astype(jnp.uint8),
              jnp.sum(overflow, axis=-1))
    self._fn, self._state = frames, state

  def __call__(self, clips) -> list[np.ndarray]:
    out = []
    for start in range(0, len(clips), self.batch):
      out.extend(self._render(clips[start:start + self.batch]))
    return out

  def _render(self, clips) -> list[np.ndarray]:
    batch = np.zeros((self.batch, self.max_frames, self.max_persons, self.joints, 3), np.float32)
    lengths = np.ones((self.batch,), np.int32)  # padding rows: one all-zero frame
    for i, c in enumerate(clips):
      pos = np.asarray(c.positions, np.float32)
      t, p, j = pos.shape[:3]
      if j != self.joints:
        raise ValueError(f"clip {c.id!r} has {j} joints ({c.topology}) but the renderer was "
                         f"built for {self.joints}; give a renderer of the data's topology "
                         f"(config.render.topology)")
      if t > self.max_frames or p > self.max_persons:
        raise ValueError(f"clip {c.id!r}: {t} frames x {p} persons exceed config.data."
                         f"max_frames {self.max_frames} / max_persons {self.max_persons}")
      batch[i, :t, :p] = pos
      lengths[i] = t
    frames, overflow = self._fn(self._state, batch, lengths)
    for c, dropped in zip(clips, np.asarray(overflow)[:len(clips)].tolist()):
      if dropped:
        self.dropped[c.id] = int(dropped)
        log.warning("clip %r: the tiled rasteriser dropped %d (tile, Gaussian) pairs; its "
                    "frames are not exact (raise config.render.capacity)", c.id, dropped)
    return list(np.asarray(frames)[:len(clips)])
