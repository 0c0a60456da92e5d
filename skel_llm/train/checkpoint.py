"""Orbax checkpoints: the train state and the data position, saved together.

`Checkpointer` wraps `ocp.CheckpointManager`: atomic commits (a step folder
appears only once complete), async saves, keep-N, save every N steps, and a
final save on exit or SIGTERM (the trainer calls `save(..., force=True)`).
Restores go into an abstract target that carries the current shardings, so a
checkpoint written on one mesh restores onto another.
"""

from __future__ import annotations

import logging
from typing import Any

import jax
import orbax.checkpoint as ocp

from skel_llm import fs

log = logging.getLogger(__name__)


class Checkpointer:
  """Train-state checkpoints under `<workdir>/checkpoints`."""

  def __init__(self, directory: str, *, keep: int = 3, every_steps: int = 100,
               async_save: bool = True):
    self.directory = fs.absolute(directory)  # local or gs:// (orbax: epath + tensorstore)
    self.every_steps = max(1, int(every_steps))
    # The interval is applied here (orbax would also save the first step it sees).
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, save_interval_steps=1,
        enable_async_checkpointing=async_save, create=True)
    self._mngr = ocp.CheckpointManager(self.directory, options=options,
                                       item_names=("state", "data"))

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def save(self, step: int, state: Any, data_position: dict, *, force: bool = False) -> bool:
    """Saves when `step` is on the interval (or `force`); returns whether a save started."""
    if not force and step % self.every_steps:
      return False
    return self._mngr.save(
        int(step), args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                           data=ocp.args.JsonSave(data_position)), force=force)

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict, int]:
    """(state, data position, step) of `step` (default: latest) into `abstract_state`'s shardings."""
    step = self._mngr.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    out = self._mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return out["state"], dict(out["data"]), int(step)

  def wait(self) -> None:
    self._mngr.wait_until_finished()

  def close(self) -> None:
    """Waits for writes in flight and closes; closing twice is harmless."""
    if getattr(self, "_closed", False):
      return
    self._mngr.wait_until_finished()
    self._mngr.close()
    self._closed = True


def _lookup(tree: Any, keys: list) -> tuple[Any, list]:
  """(node, keys as stored) at `keys`; orbax stores list indices as strings ('0')."""
  node, stored = tree, []
  for k in keys:
    if not isinstance(node, dict):
      return None, []
    if k not in node and str(k) in node:
      k = str(k)
    if k not in node:
      return None, []
    node = node[k]
    stored.append(k)
  return node, stored


def restore_variables_from(directory: str, abstract_vars: Any,
                           step: int | None = None) -> tuple[Any, list[str]]:
  """The model variables of another run (stage chaining via `config.init_from`).

  Args:
    directory: a workdir or its `checkpoints` folder.
    abstract_vars: pure-dict tree of ShapeDtypeStructs (with shardings) of all
      model variables here; each is looked up in the saved state's `params`
      (trained there) and `frozen` (the rest) subtrees.
    step: which step; default the latest.

  Returns:
    (variables, missing): restored arrays, with None where the checkpoint has
    no such variable (e.g. LoRA added in stage 3), and the missing paths.
  """
  directory = fs.absolute(directory)
  if fs.isdir(fs.join(directory, "checkpoints")):
    directory = fs.join(directory, "checkpoints")
  if not fs.isdir(directory):
    raise FileNotFoundError(f"config.init_from: checkpoint folder {directory} does not exist; "
                            f"point it at the previous stage's --workdir")
  steps = sorted(int(d) for d in fs.listdir(directory) if d.isdigit())
  if not steps:
    raise FileNotFoundError(f"config.init_from: no committed checkpoint steps in {directory}")
  step = steps[-1] if step is None else step
  path = fs.path(directory) / str(step) / "state"
  ckptr = ocp.PyTreeCheckpointer()
  saved = ckptr.metadata(path).item_metadata.tree
  missing: list[str] = []
  target: dict = {}

  def visit(p, want):
    keys = [getattr(k, "key", k) for k in p]
    for group in ("params", "frozen"):
      node, stored = _lookup(saved.get(group, {}), keys)
      if node is not None and hasattr(node, "shape"):
        if tuple(node.shape) != tuple(want.shape):
          raise ValueError(f"config.init_from {directory} step {step}: {'/'.join(map(str, keys))} "
                           f"has shape {tuple(node.shape)} there but {tuple(want.shape)} here")
        sub = target.setdefault(group, {})
        for k in stored[:-1]:
          sub = sub.setdefault(k, {})
        sub[stored[-1]] = want
        return (group, stored)
    missing.append("/".join(map(str, keys)))
    return None
  where = jax.tree_util.tree_map_with_path(visit, abstract_vars)
  restore_args = jax.tree.map(
      lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape, dtype=x.dtype),
      target)
  out = ckptr.restore(path, args=ocp.args.PyTreeRestore(target, restore_args=restore_args,
                                                        partial_restore=True))
  variables = jax.tree.map(lambda w: None if w is None else _lookup(out[w[0]], w[1])[0], where,
                           is_leaf=lambda w: w is None or isinstance(w, tuple))
  log.info("init_from %s step %d: %d variables restored, %d not in it: %s", directory, step,
           len(jax.tree.leaves(target)), len(missing), missing[:8])
  return variables, missing
