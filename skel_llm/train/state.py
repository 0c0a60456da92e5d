"""Shapes first: the abstract model, trainable/frozen split, shardings and the sharded init.

Order (STYLE.md): `nnx.eval_shape` of the model -> split into trainable
(`nnx.Param` leaves whose path matches the stage's regex rules), rng streams
and everything else (frozen) -> optimizer-state shapes -> shardings from the
logical axis names -> one jitted init with `out_shardings`. Nothing unsharded
is ever materialised.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from skel_llm.train import sharding as shd

log = logging.getLogger(__name__)


@dataclasses.dataclass
class StateLayout:
  """Everything static about the train state of one run."""

  graphdef: nnx.GraphDef
  rng_vars: Any  # concrete rng-stream variables (tiny, replicated constants)
  abstract: dict  # ShapeDtypeStructs with shardings, the structure of the state
  shardings: dict  # NamedShardings, same structure
  trainable_paths: list[str]
  frozen_paths: list[str]

  def num_params(self, part: str) -> int:
    return int(sum(x.size for x in jax.tree.leaves(self.abstract[part])))


def _paths(state: nnx.State) -> list[str]:
  return [shd.path_str(p) for p, _ in nnx.to_flat_state(state)] if hasattr(
      nnx, "to_flat_state") else [shd.path_str(p) for p, _ in state.flat_state()]


def split_model(model: nnx.Module, trainable: Sequence[str]):
  """(graphdef, trainable, rng streams, frozen) States of `model` under the regex rules."""
  return nnx.split(model, shd.regex_filter(trainable), nnx.RngState, ...)


def _master(x, dtype):
  return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x


def build_layout(make_model: Callable[[], nnx.Module], *, trainable: Sequence[str],
                 tx: optax.GradientTransformation, mesh: Mesh, rules,
                 master_dtype: str = "float32") -> StateLayout:
  """Abstract state, shardings and the graph, without allocating any parameter."""
  abstract_model = nnx.eval_shape(make_model)
  graphdef, tr, rng_state, fr = split_model(abstract_model, trainable)
  trainable_paths, frozen_paths = _paths(tr), _paths(fr)
  if not trainable_paths:
    raise ValueError(f"config.trainable {list(trainable)} matches no parameter; parameter paths "
                     f"look like {frozen_paths[:5]}")
  kind = getattr(abstract_model, "kind", "draction")
  drawn_without = [p for p in trainable_paths if p.startswith("renderer/")]
  if kind != "draction" and drawn_without:
    raise ValueError(f"config.render.kind {kind!r} draws with a fixed renderer, so the "
                     f"renderer's parameters get no gradient, yet config.trainable "
                     f"{list(trainable)} trains {drawn_without[:3]}: leave renderer/... out "
                     f"of config.trainable (weight decay alone would move them)")
  tr_names, fr_names = shd.logical_names(tr), shd.logical_names(fr)
  master = jnp.dtype(master_dtype)
  tr_abs = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, master if jnp.issubdtype(
      x.dtype, jnp.floating) else x.dtype), nnx.to_pure_dict(tr))
  fr_abs = nnx.to_pure_dict(fr)
  tr_sh = shd.tree_shardings(tr_abs, tr_names, rules, mesh)
  fr_sh = shd.tree_shardings(fr_abs, fr_names, rules, mesh)
  opt_abs = jax.eval_shape(tx.init, tr_abs)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, opt_abs, tr_sh,
                                 transform_non_params=lambda _: shd.replicated(mesh))
  shardings = {"step": shd.replicated(mesh), "params": tr_sh, "frozen": fr_sh,
               "opt_state": opt_sh}
  abstract = {"step": jax.ShapeDtypeStruct((), jnp.int32), "params": tr_abs, "frozen": fr_abs,
              "opt_state": opt_abs}
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
  # rng streams hold a key and a counter: tiny, replicated, rebuilt from the seed every run.
  rng_vars = jax.tree.map(lambda x: x, nnx.to_pure_dict(rng_state))
  return StateLayout(graphdef, rng_vars, abstract, shardings, trainable_paths, frozen_paths)


def init_state(make_model: Callable[[], nnx.Module], layout: StateLayout, trainable: Sequence[str],
               tx: optax.GradientTransformation) -> tuple[dict, Any]:
  """The sharded initial state (jitted with out_shardings) and the concrete rng streams.

  Args:
    make_model: builds the model with its initialisers (called under jit only).
    layout: from `build_layout` with the same arguments.
    trainable: regex rules.
    tx: the optimizer.
  """
  master = layout.abstract["params"]

  def init():
    model = make_model()
    _, tr, rng_state, fr = split_model(model, trainable)
    params = jax.tree.map(lambda x, a: x.astype(a.dtype), nnx.to_pure_dict(tr), master)
    frozen = nnx.to_pure_dict(fr)
    return ({"step": jnp.zeros((), jnp.int32), "params": params, "frozen": frozen,
             "opt_state": tx.init(params)}, nnx.to_pure_dict(rng_state))

  rep = jax.tree.map(lambda _: None, layout.rng_vars)
  state, rng_vars = jax.jit(init, out_shardings=(layout.shardings, rep))()
  return state, rng_vars


def merge_variables(state: dict) -> dict:
  """All model variables (trainable and frozen) as one pure dict."""
  return _deep_merge(state["frozen"], state["params"])


def _deep_merge(a: dict, b: dict) -> dict:
  out = dict(a)
  for k, v in b.items():
    out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
  return out


def init_rng_vars(make_model: Callable[[], nnx.Module], trainable: Sequence[str]) -> Any:
  """The concrete rng streams alone (those `init_state` returns): the jitted init outputs
  only them, so XLA drops every parameter initialiser (a restore needs the streams, not a
  fresh state beside the restored one)."""
  def streams():
    return nnx.to_pure_dict(split_model(make_model(), trainable)[2])
  return jax.jit(streams)()


def init_state_from(make_model: Callable[[], nnx.Module], layout: StateLayout,
                    trainable: Sequence[str], tx: optax.GradientTransformation,
                    new_vars: dict) -> tuple[dict, Any]:
  """The state with model variables from `new_vars` (leaves None where it has none) and the
  concrete rng streams; a fresh optimizer state and step 0.

  Used for `config.init_from`: only the variables `new_vars` lacks (LoRA adapters, the
  renderer) are initialised, by one jitted init whose outputs are those leaves alone, so a
  fresh copy of the loaded weights never exists beside them. Each loaded leaf takes this
  run's dtype and sharding (the source array is dropped as soon as it is converted).
  """
  parts = ("params", "frozen")
  abstract = {k: layout.abstract[k] for k in parts}
  shardings = {k: layout.shardings[k] for k in parts}
  structure = jax.tree.structure(abstract)
  loaded = jax.tree.leaves({k: _select_like(new_vars, abstract[k]) for k in parts},
                           is_leaf=lambda x: x is None)
  want = jax.tree.leaves(abstract)
  fresh_at = [i for i, v in enumerate(loaded) if v is None]
  is_fresh = set(fresh_at)
  master = layout.abstract["params"]

  def fresh():
    _, tr, rng_state, fr = split_model(make_model(), trainable)
    params = jax.tree.map(lambda x, a: x.astype(a.dtype), nnx.to_pure_dict(tr), master)
    leaves = jax.tree.leaves({"params": params, "frozen": nnx.to_pure_dict(fr)})
    return [leaves[i] for i in fresh_at], nnx.to_pure_dict(rng_state)

  sh = jax.tree.leaves(shardings)
  rep = jax.tree.map(lambda _: None, layout.rng_vars)
  fresh_leaves, rng_vars = jax.jit(fresh, out_shardings=([sh[i] for i in fresh_at], rep))()
  for i, x in zip(fresh_at, fresh_leaves):
    loaded[i] = x
  for i, (x, a) in enumerate(zip(loaded, want)):
    if i in is_fresh:
      continue
    if tuple(x.shape) != tuple(a.shape):
      raise ValueError(f"shape mismatch {x.shape} vs {a.shape}")
    loaded[i] = None  # The converted copy below replaces the source array, not joins it.
    loaded[i] = jax.device_put(x.astype(a.dtype) if isinstance(x, jax.Array)
                               else np.asarray(x, a.dtype), a.sharding)
    del x
  tree = jax.tree.unflatten(structure, loaded)
  del loaded
  opt_state = jax.jit(tx.init, out_shardings=layout.shardings["opt_state"])(tree["params"])
  step = jax.device_put(jnp.zeros((), jnp.int32), layout.shardings["step"])
  return {"step": step, "params": tree["params"], "frozen": tree["frozen"],
          "opt_state": opt_state}, rng_vars


def _select_like(tree: dict, like: dict) -> dict:
  """The sub-tree of `tree` with the keys of `like` (None where `tree` lacks one)."""
  out = {}
  for k, v in like.items():
    node = tree.get(k) if isinstance(tree, dict) else None
    out[k] = _select_like(node if isinstance(node, dict) else {}, v) if isinstance(v, dict) \
        else node
  return out
