"""Device mesh and logical-axis sharding rules.

Model code names logical axes only (`('embed', 'mlp')`, `('vocab', 'embed')`);
the config maps each logical name to mesh axes (`data`, `fsdp`, `tensor`) as
an ordered list of `(logical, mesh_axes)` pairs, the first match winning
(maxtext's convention). A rule whose mesh size does not divide the dimension is
logged and that dimension replicated; a mesh axis already used by an earlier
dimension of the same array is skipped.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from typing import Any, Iterable, Mapping, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from skel_llm.models import partitioning

MESH_AXES = ("data", "fsdp", "tensor")
# Batch dimensions of every input array are split over both data-parallel axes.
BATCH_AXES = ("data", "fsdp")

log = logging.getLogger(__name__)


def mesh_shape(mesh_cfg: Mapping[str, int], num_devices: int) -> tuple[int, int, int]:
  """Mesh sizes (data, fsdp, tensor); one entry may be -1 = "all remaining devices"."""
  unknown = set(mesh_cfg) - set(MESH_AXES)
  if unknown:
    raise ValueError(f"config.mesh has unknown axes {sorted(unknown)}; allowed: {MESH_AXES}")
  sizes = [int(mesh_cfg.get(a, 1)) for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"config.mesh: at most one axis may be -1, got {dict(zip(MESH_AXES, sizes))}")
  if any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"config.mesh sizes must be positive or -1, got {dict(zip(MESH_AXES, sizes))}")
  fixed = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if num_devices % fixed:
      raise ValueError(f"config.mesh {dict(zip(MESH_AXES, sizes))}: {num_devices} devices are not "
                       f"divisible by the fixed axes' product {fixed}")
    sizes[sizes.index(-1)] = num_devices // fixed
  if math.prod(sizes) != num_devices:
    raise ValueError(f"config.mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices "
                     f"but {num_devices} are in use; set config.mesh.data=-1 to fill them")
  return tuple(sizes)  # type: ignore[return-value]


def make_mesh(mesh_cfg: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A (data, fsdp, tensor) mesh with classic (Auto) axis types."""
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(mesh_cfg, len(devices))
  auto = (jax.sharding.AxisType.Auto,) * 3
  if len(devices) == len(jax.devices()):
    return jax.make_mesh(shape, MESH_AXES, axis_types=auto)
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=auto)


def _as_tuple(axes: Any) -> tuple[str, ...]:
  if axes is None:
    return ()
  if isinstance(axes, str):
    return (axes,)
  return tuple(axes)


def logical_to_spec(names: Sequence[str | None] | None, shape: Sequence[int],
                    rules: Iterable[tuple[str, Any]], mesh: Mesh, *, where: str = "") -> P:
  """PartitionSpec for an array of `shape` whose dimensions carry logical `names`."""
  if names is None:
    return P()
  names = tuple(names)
  if len(names) != len(shape):
    raise ValueError(f"{where}: {len(names)} logical axis names {names} for an array of shape "
                     f"{tuple(shape)}")
  rules = list(rules)
  used: set[str] = set()
  spec: list[Any] = []
  for dim, name in zip(shape, names):
    axes: tuple[str, ...] = ()
    if name is not None:
      for logical, mesh_axes in rules:
        if logical == name:
          axes = _as_tuple(mesh_axes)
          break
    axes = tuple(a for a in axes if a not in used and mesh.shape.get(a, 1) > 1)
    size = math.prod(mesh.shape[a] for a in axes) if axes else 1
    if axes and dim % size:
      log.info("%s: dimension %s (%s) of size %d is not divisible by mesh axes %s (%d); "
               "replicating it", where, len(spec), name, dim, axes, size)
      axes = ()
    used.update(axes)
    spec.append(axes[0] if len(axes) == 1 else (axes or None))
  return P(*spec)


def _names_of(var: nnx.Variable) -> tuple[str | None, ...] | None:
  meta = var.get_metadata()
  for key in ("sharding_names", "out_sharding", "sharding"):
    names = meta.get(key)
    if names is not None:
      return tuple(names)
  return None


def logical_names(state: nnx.State) -> dict:
  """A pure-dict tree of each variable's logical axis names (None when it has none)."""
  named = jax.tree.map(lambda v: _NamesLeaf(_names_of(v)), state,
                       is_leaf=lambda x: isinstance(x, nnx.Variable))
  return nnx.to_pure_dict(named) if isinstance(named, nnx.State) else named


class _NamesLeaf:
  """Wraps names so that tree utilities treat them as one leaf."""

  def __init__(self, names):
    self.names = names

  def __repr__(self):
    return f"Names({self.names})"


def tree_shardings(abstract: Any, names: Any, rules, mesh: Mesh) -> Any:
  """NamedShardings for a pure-dict tree of ShapeDtypeStructs given a matching names tree."""
  def one(path, x, n):
    where = jax.tree_util.keystr(path)
    spec = logical_to_spec(n.names if isinstance(n, _NamesLeaf) else n, x.shape, rules, mesh,
                           where=where)
    return NamedSharding(mesh, spec)
  return jax.tree_util.tree_map_with_path(
      one, abstract, names, is_leaf=lambda x: isinstance(x, _NamesLeaf) or x is None)


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Leading (batch) dimension over the data-parallel axes, the rest replicated."""
  return NamedSharding(mesh, P(BATCH_AXES, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def process_batch_rows(mesh: Mesh, global_batch: int) -> list[int]:
  """The global-batch rows that this process's devices hold under `batch_sharding` (sorted).

  This is the slice of every global batch the host must read: one contiguous run per host
  when the data-parallel axes are laid out host-major (`jax.make_mesh`), all rows when the
  batch is replicated over hosts. `jax.make_array_from_process_local_data` expects the
  local rows in this order.
  """
  indices = batch_sharding(mesh, 1).addressable_devices_indices_map((global_batch,))
  rows: set[int] = set()
  for (rows_slice,) in indices.values():
    rows.update(range(*rows_slice.indices(global_batch)))
  return sorted(rows)


def data_parallel_size(mesh: Mesh) -> int:
  return math.prod(mesh.shape[a] for a in BATCH_AXES)


def check_rules(rules: Iterable[tuple[str, Any]]) -> list[tuple[str, tuple[str, ...]]]:
  """Validates config rules: known mesh axes, string logical names."""
  out = []
  for i, rule in enumerate(rules):
    if len(rule) != 2 or not isinstance(rule[0], str):
      raise ValueError(f"config.sharding_rules[{i}] must be (logical_name, mesh_axes), got {rule!r}")
    axes = _as_tuple(rule[1])
    bad = [a for a in axes if a not in MESH_AXES]
    if bad:
      raise ValueError(f"config.sharding_rules[{i}] {rule!r}: unknown mesh axes {bad}; "
                       f"allowed {MESH_AXES}")
    out.append((rule[0], axes))
  return out


def path_str(path: Sequence[Any]) -> str:
  """'renderer/appearance/0/kernel' for an nnx path or a jax key path."""
  parts = []
  for p in path:
    for attr in ("key", "name", "idx"):
      if hasattr(p, attr):
        p = getattr(p, attr)
        break
    parts.append(str(p))
  return "/".join(parts)


def regex_filter(patterns: Sequence[str]):
  """An nnx filter: `nnx.Param` leaves whose path fully matches one of `patterns`."""
  compiled = [re.compile(p) for p in patterns]

  def keep(path, value) -> bool:
    if not isinstance(value, nnx.Param):
      return False
    s = path_str(path)
    return any(c.fullmatch(s) for c in compiled)
  return keep


def activation_resolver(rules: Iterable[tuple[str, Any]], mesh: Mesh) -> partitioning.Resolver:
  """Maps the model's logical activation names (`skel_llm.models.partitioning`) with `rules`.

  A name that no rule mentions leaves its dimension unconstrained (XLA chooses), so rules
  written for parameters only add no activation constraints; on a one-device mesh nothing
  is constrained.
  """
  rules = list(rules)
  known = {logical for logical, _ in rules}

  def resolve(names, shape):
    if mesh.size == 1 or not known.intersection(names):
      return None
    spec = logical_to_spec(names, shape, rules, mesh, where=f"activation {names}")
    return NamedSharding(mesh, P(*(s if n is None or n in known else P.UNCONSTRAINED
                                   for n, s in zip(names, spec))))
  return resolve


def with_activation_sharding(fn, rules: Iterable[tuple[str, Any]], mesh: Mesh):
  """`fn` whose tracing pins the model's activations by `rules` on `mesh` (see above)."""
  resolver = activation_resolver(rules, mesh)

  @functools.wraps(fn)
  def traced(*args, **kwargs):
    with partitioning.rules_context(resolver):
      return fn(*args, **kwargs)
  return traced
