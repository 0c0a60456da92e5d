"""Pins skel_llm/models/partitioning.py and the activation rules of skel_llm/train/sharding.py.

Structural checks of the compiled smoke step on the 8 simulated CPU devices (what XLA
communicates, read from the partitioned HLO by skel_llm/train/hlo_stats.py), and that the
models stay mesh-free when no rules are active.
"""

import itertools
import pathlib

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from skel_llm import models
from skel_llm.models import partitioning as part
from skel_llm.train import defaults, hlo_stats, sharding, trainer


def _config(mesh):
  path = pathlib.Path(__file__).resolve().parents[2] / "configs" / "warmup.py"
  c = defaults.load_config(path, "smoke")  # everything trains: every gradient is reduced
  c.data.max_len = 320
  c.mesh.update(mesh)
  return c


def _compile(mesh):
  run = trainer.Run(_config(mesh), devices=jax.devices()[:8])
  run.init_state()
  key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
  compiled = run.step_fn().lower(run.layout.abstract, run.abstract_batch(), key).compile()
  return run, compiled.as_text()


def _nbytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _is_weight_piece(hlo_type: str, weight_shapes: set[tuple[int, ...]]) -> bool:
  """Every array of `hlo_type` is a weight, or a slice of one split 2/4/8 ways per dimension
  (in any dimension order, size-1 dimensions dropped: XLA may transpose and squeeze)."""
  squeeze = lambda shape: tuple(d for d in shape if d != 1)  # noqa: E731
  weight_shapes = {squeeze(w) for w in weight_shapes}
  arrays = [squeeze(int(d) for d in dims.split(",") if d)
            for _, dims in hlo_stats._ARRAY.findall(hlo_type)]

  def piece_of(shape, weight):
    return len(shape) == len(weight) and all(
        s > 0 and w % s == 0 and w // s in (1, 2, 4, 8) for s, w in zip(shape, weight))
  return all(any(piece_of(perm, w) for w in weight_shapes for perm in
                 set(itertools.permutations(a))) for a in arrays)


def test_data_parallel_step_only_reduces_gradients():
  run, hlo = _compile(dict(data=8, fsdp=1, tensor=1))
  stats = hlo_stats.collectives(hlo)
  # Every clip is rendered, encoded and scored on its own device: nothing but reductions
  # (gradients, loss sums), no gathered or permuted frames or tokens.
  assert set(stats) == {"all-reduce"}, stats
  grads = _nbytes(run.layout.abstract["params"])
  # Each gradient crosses devices at most twice (the tied embedding's two uses are reduced
  # before they are added), the scalars add a few bytes.
  assert grads <= stats["all-reduce"][1] <= 2 * grads, (stats, grads)


def test_3d_mesh_moves_weights_and_tensor_parallel_sums_only(capfd):
  run, hlo = _compile(dict(data=2, fsdp=2, tensor=2))
  # XLA warns when a layout change needs a full copy of an array on every device.
  assert "Involuntary full rematerialization" not in capfd.readouterr().err
  state = run.layout.abstract
  weights = {tuple(x.shape) for x in jax.tree.leaves((state["params"], state["frozen"]))}
  found = hlo_stats.find_collectives(hlo)
  assert not [c for c in found if c.kind == "all-to-all"]
  # FSDP gathers weights; activations are never gathered or shuffled between devices.
  moved = [c for c in found if c.kind in ("all-gather", "collective-permute")]
  assert moved and all(_is_weight_piece(c.result_type, weights) for c in moved), [
      (c.kind, c.result_type, c.op_name) for c in moved
      if not _is_weight_piece(c.result_type, weights)]
  model_bytes = _nbytes((state["params"], state["frozen"]))
  assert sum(c.bytes for c in moved) <= 2 * model_bytes
  # All-reduces: gradients (at most twice each) plus tensor-parallel partial sums of the
  # blocks' outputs and input gradients, at most 8 residual-stream arrays per block.
  c = run.config
  dp = sharding.data_parallel_size(run.mesh)
  images = c.batch_size * c.render.num_frames // dp
  patches = (c.render.image_size // c.model.patch_size) ** 2 + 1
  text_residual = 4 * c.batch_size // dp * c.data.max_len * c.model.text_width
  vision_residual = 4 * images * patches * c.model.vision_width
  bound = (2 * _nbytes(state["params"]) + 8 * c.model.text_layers * text_residual
           + 8 * (c.model.vision_layers + 1) * vision_residual)
  reduced = sum(x.bytes for x in found if x.kind == "all-reduce")
  assert reduced <= bound, (reduced, bound)


def test_resolver_maps_rules_and_leaves_unknown_names_free():
  rules = sharding.check_rules(defaults.SHARDING_RULES)
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2), jax.devices()[:8])
  resolve = sharding.activation_resolver(rules, mesh)
  assert resolve(part.RESIDUAL, (8, 16, 64)).spec == P(("data", "fsdp"), None, None)
  assert resolve((part.BATCH, part.LENGTH, part.HEADS, None), (4, 16, 4, 8)).spec == P(
      ("data", "fsdp"), None, "tensor", None)
  # 1123 logits do not split over tensor = 2: replicated, as for parameters.
  assert resolve((part.BATCH, part.LENGTH, part.VOCAB), (4, 16, 1123)).spec == P(
      ("data", "fsdp"), None, None)
  # Names no rule mentions are left to XLA; rules for parameters only constrain nothing.
  assert resolve(("activation_other", part.LENGTH), (4, 16)).spec == P(P.UNCONSTRAINED, None)
  params_only = [r for r in rules if not r[0].startswith("activation_")]
  assert sharding.activation_resolver(params_only, mesh)(part.RESIDUAL, (8, 16, 64)) is None
  one = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  assert sharding.activation_resolver(rules, one)(part.RESIDUAL, (8, 16, 64)) is None


def _constraints(jaxpr) -> int:
  """sharding_constraint equations, nested jaxprs (remat, pjit) included."""
  n = 0
  for eqn in jaxpr.eqns:
    n += eqn.primitive.name == "sharding_constraint"
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      n += _constraints(sub)
  return n


def test_models_are_mesh_free_without_rules_and_pinned_with_them():
  config = models.tiny_config(image_size=28)
  model = models.InternVL(config, rngs=nnx.Rngs(0))
  t = config.num_image_token
  ids = np.asarray([[1] + [config.image_token_id] * t + [5, 6]] * 4, np.int32)
  px = np.random.default_rng(0).uniform(0, 1, (4, 1, 3, 28, 28)).astype(np.float32)
  graphdef, state = nnx.split(model)

  def logits(state, ids, px):
    return nnx.merge(graphdef, state)(ids, None, px)

  x = jnp.ones((2, 3))
  assert part.constrain(x, part.RESIDUAL[:2]) is x  # no rules: the very same array
  assert not part.active() and _constraints(jax.make_jaxpr(logits)(state, ids, px).jaxpr) == 0
  rules = sharding.check_rules(defaults.SHARDING_RULES)
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2), jax.devices()[:8])
  pinned = sharding.with_activation_sharding(logits, rules, mesh)
  # Embedding lookup, residual stream, q/k/v, MLP hidden, merge and logits of both towers.
  layers = config.text.num_layers + config.vision.num_layers
  assert _constraints(jax.make_jaxpr(pinned)(state, ids, px).jaxpr) >= 8 * layers
  assert not part.active()  # the context ends with the trace
  np.testing.assert_allclose(jax.jit(pinned)(state, ids, px), jax.jit(logits)(state, ids, px),
                             rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="2 logical axis names"):
    with part.rules_context(sharding.activation_resolver(rules, mesh)):
      part.constrain(jnp.ones((2, 3, 4)), part.RESIDUAL[:2])
