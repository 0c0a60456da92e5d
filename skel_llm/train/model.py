"""The composed SkeletonLLM: DrAction renderer -> InternVL3, and its forward pass.

Glossary: B batch, T frames of the full-rate sequence, n rendered frames, P
persons, J joints, S image side, L tokens, V vocabulary.

`forward(model, batch, rng, training)`: frame selection (random per segment in
training, midpoints otherwise) and rendering vmapped over the batch with the
renderer in float32 -> `pixel_values float[B, n, 3, S, S]` (no mean/std
normalisation, docs/method.md §2) -> vision tower -> projector ->
visual tokens merged at the `<IMG_CONTEXT>` positions -> LLM -> logits.
`forward_with_stats` (the train step's) also returns `render_overflow`: the (tile,
Gaussian) pairs the tiled rasteriser dropped in the batch's frames, which the trainer
reports (`skel_llm.train.lifecycle.OverflowTally`) instead of training on inexact frames
unseen.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from skel_llm.models import partitioning as part
from skel_llm.render import frames as frames_lib
from skel_llm.render import raster

RENDER_KINDS = ("draction", "velocity", "stick")
PERSON_MODES = ("joint", "overlay")


class SkeletonLLM(nnx.Module):
  """Renderer + multimodal LLM as one module (paths `renderer/...`, `mllm/...`).

  Attributes:
    renderer: `skel_llm.render.DrAction`.
    mllm: `skel_llm.models.InternVL`.
    num_frames: n frames rendered per clip.
    image_size: S.
    fov_deg: camera field of view.
    dense: exact dense rasteriser (small images) instead of the tiled one.
    tile: tile side of the tiled rasteriser (`render.raster.composite_tiled`).
    capacity: its (tile, Gaussian) pairs per frame; None: `raster.default_capacity`.
    stride: velocity stride on the full-rate sequence.
    kind: what draws the frames (`RENDER_KINDS`): `draction` (the renderer, trained by the
      LLM's loss), or a fixed ablation renderer of `render.baselines`: `velocity` ("3D +
      velocity" colours on DrAction's Gaussians) or `stick` (the 2D projection as a stick
      figure); a fixed one leaves the renderer's parameters unused (zero gradients).
    persons: `joint` (both persons' Gaussians in one depth-sorted composite, the method) or
      `overlay` (each person drawn alone, the images combined by their per-pixel maximum:
      the paper's separate-and-overlay ablation).
    mixed: `skel_llm.render.mixed.MixedLayouts` of a mixed-format run (`config.data.topologies`):
      batches carry `topology` int32[B] and each row is drawn with its own topology's layout,
      derived from the renderer's parameters; None for a single-topology run (the ablation
      switches `kind` and `persons` are for single-topology runs: DrAction, joint).
  """

  def __init__(self, renderer: nnx.Module, mllm: nnx.Module, *, num_frames: int, image_size: int,
               fov_deg: float = 60.0, dense: bool = True, stride: int = 4,
               kind: str = "draction", persons: str = "joint", mixed=None,
               tile: int = raster.DEFAULT_TILE, capacity: int | None = None):
    if kind not in RENDER_KINDS:
      raise ValueError(f"render kind must be one of {RENDER_KINDS}, got {kind!r}")
    if persons not in PERSON_MODES:
      raise ValueError(f"persons must be one of {PERSON_MODES}, got {persons!r}")
    if mixed is not None and (kind, persons) != ("draction", "joint"):
      raise ValueError(f"a mixed-format model draws with DrAction, both persons jointly; got "
                       f"render kind {kind!r}, persons {persons!r}")
    self.kind = kind
    self.persons = persons
    self.renderer = renderer
    self.mllm = mllm
    self.num_frames = int(num_frames)
    self.image_size = int(image_size)
    self.fov_deg = float(fov_deg)
    self.dense = bool(dense)
    self.tile = int(tile)
    self.capacity = None if capacity is None else int(capacity)
    self.stride = int(stride)
    self.mixed = mixed

  def render(self, positions: jax.Array, lengths: jax.Array, rng: jax.Array | None,
             weights: dict | None = None, topology: jax.Array | None = None,
             with_stats: bool = False):
    """float32[B, T, P, J, 3], int32[B] -> frames float32[B, n, S, S, 3] in [0, 1].

    Selection and rendering are per clip: every array keeps the clip axis split like the
    batch (`activation_batch`), so data parallelism needs no communication here.
    `weights`: another renderer's `{'params', 'buffers'}` (another topology's, from
    `render.checkpoint.transfer`) drawn with this model's camera and frame settings.
    `topology`: int32[B] row topologies of a mixed-format batch (needs `self.mixed`; positions
    zero-padded to its joint count), each row drawn with its own layout (`render.mixed`).
    `with_stats`: return (frames, overflow int32[B]), the (tile, Gaussian) pairs of each clip's
    frames that the tiled rasteriser dropped for lack of capacity (0: exact up to its eps;
    always 0 for the dense path and the stick figure, which have no tiles).
    """
    clips = lambda x: part.constrain(x, (part.BATCH,) + (None,) * (x.ndim - 1))  # noqa: E731
    poses, vels, _ = frames_lib.select_frames_batch(clips(positions.astype(jnp.float32)),
                                                    lengths, self.num_frames, rng=rng,
                                                    stride=self.stride)
    poses, vels = clips(poses), clips(vels)
    if topology is not None:
      if self.mixed is None:
        raise ValueError("a batch with `topology` rows needs a mixed-format model "
                         "(config.data.topologies)")
      from skel_llm.render import mixed as mixed_lib
      frames, overflow, _ = mixed_lib.render_batch(
          self.renderer.weights(), clips(topology), poses, vels, mixed=self.mixed,
          image_size=self.image_size, fov_deg=self.fov_deg, dense=self.dense, tile=self.tile,
          capacity=self.capacity)
    elif self.persons == "joint":
      frames, overflow = self._draw(poses, vels, weights)
    else:
      drawn = [self._draw(poses[..., i:i + 1, :, :], vels[..., i:i + 1, :, :], weights)
               for i in range(poses.shape[-3])]
      frames = functools.reduce(jnp.maximum, [f for f, _ in drawn])
      overflow = sum(o for _, o in drawn)
    frames = clips(frames)
    if not with_stats:
      return frames
    return frames, clips(jnp.sum(overflow, axis=-1))  # [B, n] -> [B]

  def _draw(self, poses: jax.Array, vels: jax.Array, weights: dict | None
            ) -> tuple[jax.Array, jax.Array]:
    """(frames float32[B, n, S, S, 3], overflow int32[B, n]) of selected poses, vels
    float32[B, n, P, J, 3]."""
    from skel_llm.render import baselines, renderer as renderer_lib
    view = dict(image_size=self.image_size, fov_deg=self.fov_deg)
    tiled = dict(view, dense=self.dense, tile=self.tile, capacity=self.capacity)
    if self.kind == "velocity":
      buffers = (weights or self.renderer.weights())["buffers"]
      return jax.vmap(lambda p, v: baselines.velocity_colour_frames(
          buffers, p, v, with_stats=True, **tiled))(poses, vels)
    if self.kind == "stick":
      if weights is not None:
        raise ValueError("render.kind 'stick' draws the run's own topology only; a "
                         "cross-format evaluation needs render.kind 'draction' or 'velocity'")
      frames = jax.vmap(lambda p: baselines.render_stick_figure(
          p, topology=self.renderer.topology, **view))(poses)
      return frames, jnp.zeros(poses.shape[:2], jnp.int32)
    if weights is None:
      frames, overflow, _ = self.renderer(poses, vels, with_stats=True, **tiled)
    else:
      frames, overflow, _ = renderer_lib.render_batch(weights, poses, vels, **tiled)
    return frames, overflow

  def pixel_values(self, frames: jax.Array) -> jax.Array:
    """float32[B, n, S, S, 3] -> float[B, n, 3, S, S] (the vision tower's layout)."""
    return jnp.transpose(frames, (0, 1, 4, 2, 3))

  def logits_from_frames(self, frames: jax.Array, input_ids: jax.Array,
                         input_mask: jax.Array) -> jax.Array:
    return self.mllm(input_ids, input_mask, self.pixel_values(frames))

  def __call__(self, batch: dict[str, Any], rng: jax.Array | None) -> jax.Array:
    return self.logits_and_stats(batch, rng)[0]

  def logits_and_stats(self, batch: dict[str, Any], rng: jax.Array | None
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(logits float32[B, L, V], `render_stats`) of a batch."""
    frames, overflow = self.render(batch["positions"], batch["num_frames"], rng,
                                   topology=batch.get("topology"), with_stats=True)
    return (self.logits_from_frames(frames, batch["input_ids"], batch["input_mask"]),
            render_stats(overflow))

  def hidden(self, batch: dict[str, Any], rng: jax.Array | None
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(the LLM's final-normed states float[B, L, D], `render_stats`); `self.mllm.logits`
    maps the states to logits."""
    frames, overflow = self.render(batch["positions"], batch["num_frames"], rng,
                                   topology=batch.get("topology"), with_stats=True)
    return (self.mllm.hidden_states(batch["input_ids"], batch["input_mask"],
                                    self.pixel_values(frames)), render_stats(overflow))


def render_stats(overflow: jax.Array) -> dict[str, jax.Array]:
  """The step metrics of a batch's int32[B] overflow: `render_overflow`, the (tile, Gaussian)
  pairs the batch's frames dropped (0 when every frame is exact up to the rasteriser's eps)."""
  return {"render_overflow": jnp.sum(overflow).astype(jnp.int32)}


def forward(model: SkeletonLLM, batch: dict, rng: jax.Array, training: bool) -> jax.Array:
  """logits float32[B, L, V]; frames drawn at random per segment only when `training`."""
  return model(batch, rng if training else None)


def forward_with_stats(model: SkeletonLLM, batch: dict, rng: jax.Array, training: bool
                       ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(logits as `forward`, `render_stats`): the train step's forward."""
  return model.logits_and_stats(batch, rng if training else None)


def forward_hidden(model: SkeletonLLM, batch: dict, rng: jax.Array, training: bool):
  """(hidden float[B, L, D], logits_fn hidden[..., D] -> float32[..., V], `render_stats`) as
  `forward_with_stats`."""
  hidden, stats = model.hidden(batch, rng if training else None)
  return hidden, model.mllm.logits, stats
