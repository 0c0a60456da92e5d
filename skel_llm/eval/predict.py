"""Prediction functions built from a train state: what every evaluator is given.

Evaluators never see the trainer: they get a `PredictFns` (render, generate, score), each a
jitted function of `(state, ...)` over global arrays on the run's mesh, and return whole host
(numpy) results that every process holds. Built once per run (`PredictFns.from_layout`), so
the same compiled programs serve every evaluation step and `python -m skel_llm.evaluate`.

Axis letters: B batch, T frames, P persons, J joints, n rendered frames, S image side,
L prompt tokens, N new tokens, C candidates, M candidate tokens.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from skel_llm import models
from skel_llm.train import sharding as shd


def gather(x: jax.Array) -> np.ndarray:
  """A global array, whole on every host."""
  if jax.process_count() == 1:
    return np.asarray(x)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def _whole(x) -> np.ndarray:
  """A (replicated or sharded) array as one host numpy array."""
  if getattr(x, "is_fully_addressable", True):
    return np.asarray(x)
  if x.is_fully_replicated:
    return np.asarray(x.addressable_shards[0].data)
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


@dataclasses.dataclass
class PredictFns:
  """Render / generate / score over the run's model, given the train state's variables.

  Attributes:
    graphdef, rng_vars: the composed model's structure (`skel_llm.train.state.StateLayout`).
    mesh: the run's device mesh; batches are split over its (data, fsdp) axes.
    rows: the rows of an evaluation batch of `global_batch` that this host holds.
  """

  graphdef: Any
  rng_vars: Any
  mesh: jax.sharding.Mesh

  def __post_init__(self):
    graphdef, rng_vars = self.graphdef, self.rng_vars

    def frames(state, positions, lengths):
      model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
      frames, overflow = model.render(positions, lengths, None, with_stats=True)
      return frames, jnp.sum(overflow)

    self._render = jax.jit(frames)

    def frames_with(state, weights, positions, lengths):
      model = nnx.merge(graphdef, state["params"], state["frozen"], rng_vars)
      frames, overflow = model.render(positions, lengths, None, weights, with_stats=True)
      return frames, jnp.sum(overflow)

    self._render_with = jax.jit(frames_with)
    # Device sum of the (tile, Gaussian) pairs the renders since `take_dropped` dropped.
    self._dropped: jax.Array | None = None
    # Transferred renderer weights per target topology, for one state at a time.
    self._transferred_state: Any = None
    self._transferred: dict[Any, dict] = {}
    self._topology: str | None = None

  def _model(self, state):
    return nnx.merge(self.graphdef, state["params"], state["frozen"], self.rng_vars)

  def rows(self, global_batch: int) -> list[int]:
    """The rows of a global evaluation batch that this host reads and feeds."""
    return shd.process_batch_rows(self.mesh, global_batch)

  def to_device(self, local: dict[str, np.ndarray], global_batch: int) -> dict[str, jax.Array]:
    """Global batch-sharded arrays from this host's rows (`rows(global_batch)`)."""
    out = {}
    for k, v in local.items():
      out[k] = jax.make_array_from_process_local_data(
          shd.batch_sharding(self.mesh, v.ndim), v, (global_batch,) + v.shape[1:])
    return out

  def render(self, state, positions: jax.Array, lengths: jax.Array,
             topology=None) -> jax.Array:
    """float32[B, n, S, S, 3] midpoint frames (deterministic), batch-sharded.

    `topology` (a registry name, or a `Topology` such as a BVH file's own skeleton) other than
    the run renderer's (a cross-format evaluation): the state's renderer is transferred to it
    first (`render.checkpoint.transfer_to`: appearance MLP, NFM and depth mix copied,
    per-Gaussian features interpolated per bank), with no training.

    The (tile, Gaussian) pairs the tiled rasteriser drops for lack of capacity are added up
    on device (no host fetch per batch) and read with `take_dropped`.
    """
    if not self.is_transferred(state, topology):
      frames, dropped = self._render(state, positions, lengths)
    else:
      frames, dropped = self._render_with(state, self.transferred(state, topology), positions,
                                          lengths)
    self._dropped = dropped if self._dropped is None else self._dropped + dropped
    return frames

  def take_dropped(self) -> int:
    """The (tile, Gaussian) pairs dropped by the renders since the last call (0: every frame
    exact up to the rasteriser's eps), and the count restarts; every process calls it."""
    dropped, self._dropped = self._dropped, None
    return 0 if dropped is None else int(_whole(dropped))

  def renderer_topology(self, state) -> str:
    """The registry name of the topology the state's own renderer draws."""
    if self._topology is None:  # static: part of the model's structure
      self._topology = self._model(state).renderer.topology
    return self._topology

  def is_transferred(self, state, topology) -> bool:
    """Whether `render(state, ..., topology)` draws with a transferred renderer."""
    if topology is None:
      return False
    name = topology if isinstance(topology, str) else topology.name
    return name != self.renderer_topology(state)

  def transferred(self, state, topology) -> dict:
    """The state's renderer weights transferred to `topology` (replicated), cached per
    topology for the latest state."""
    if self._transferred_state is not state:
      self._transferred_state, self._transferred = state, {}
    key = (topology if isinstance(topology, str)
           else (topology.name, topology.joint_names, topology.bones))
    if key not in self._transferred:
      from skel_llm.render import checkpoint
      renderer = self._model(state).renderer
      source = jax.tree.map(_whole, renderer.weights())
      spb = tuple(int(n) for n in renderer.samples_per_bone) or None
      weights = checkpoint.transfer_to(source, topology, source_samples_per_bone=spb,
                                       blend=renderer.blend_rule)
      replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
      self._transferred[key] = jax.tree.map(
          lambda x: jax.device_put(np.asarray(x, np.float32), replicated), weights)
    return self._transferred[key]

  def generate(self, state, frames: jax.Array, input_ids: jax.Array, input_mask: jax.Array, *,
               max_new_tokens: int, stop_id: int, pad_id: int,
               repetition_penalty: float = 1.0) -> np.ndarray:
    """Greedy replies int32[B, N] (whole on every host); `pad_id` after the stop token."""
    model = self._model(state)
    new = models.generate(model.mllm, input_ids, input_mask, model.pixel_values(frames),
                          max_new_tokens=max_new_tokens, stop_tokens=(stop_id,), pad_id=pad_id,
                          repetition_penalty=repetition_penalty)
    return gather(new)

  def score(self, state, frames: jax.Array, prefix_ids: jax.Array, prefix_mask: jax.Array,
            cand_ids: jax.Array, cand_mask: jax.Array) -> np.ndarray:
    """float32[B, C] summed log p(candidate | prefix, frames), whole on every host.

    The prefix (with its images) runs once; every candidate continues from its KV cache
    (`models.score_candidates`).
    """
    model = self._model(state)
    logp = models.score_candidates(model.mllm, prefix_ids, prefix_mask,
                                   model.pixel_values(frames), cand_ids, cand_mask)
    return gather(logp)
