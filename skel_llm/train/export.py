"""What a finished stage hands on: the trained renderer in the authors' released format and,
optionally, the LoRA-merged LLM in the transformers layout (`config.export`).
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
from flax import nnx

from skel_llm import fs


def export(run, state: dict, workdir: str) -> None:
  """Trained renderer -> released safetensors; LoRA-merged LLM -> transformers layout.

  Every process calls it. The renderer (small) is gathered whole onto every host, a
  collective over all hosts, then process 0 writes it. The LLM never is: `export_hf` takes
  its tensors from the devices one at a time, folding the adapters in, and process 0 writes
  them into files of at most `config.export.max_shard_size` (transformers' sharded layout).
  """
  ex = run.config.get("export", {})
  if not (ex and (ex.get("renderer", False) or ex.get("merged_hf", False))):
    return
  out_dir = fs.join(workdir, "export")
  if ex.get("renderer", False):
    _export_renderer(run, state, out_dir)
  if ex.get("merged_hf", False):
    from skel_llm import models
    path = fs.join(out_dir, "internvl_merged")
    model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
    # Every process joins the gathers; process 0 writes, into a local folder that is uploaded
    # when `path` is on gs:// (safetensors and the tokenizer write local files only).
    writer = fs.local_dir(path) if jax.process_index() == 0 else contextlib.nullcontext(path)
    with writer as local:
      models.export_hf(model.mllm, local, tokenizer=run.tokenizer.raw,
                       max_shard_size=ex.get("max_shard_size", "5GB"))
    if jax.process_index() == 0:
      print(f"[skel_llm] LoRA-merged model exported to {path}", flush=True)


def _export_renderer(run, state: dict, out_dir: str) -> None:
  from jax.experimental import multihost_utils

  from skel_llm import render
  # Only the renderer is gathered: the LLM (gigabytes on a pod) stays on its devices and
  # joins the merge as shapes alone.
  pick = lambda tree: {k: v for k, v in tree.items() if k == "renderer"}  # noqa: E731
  params, frozen = multihost_utils.process_allgather((pick(state["params"]),
                                                      pick(state["frozen"])), tiled=True)
  if jax.process_index() != 0:
    return
  shapes = lambda tree: jax.tree.map(  # noqa: E731
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
  params = {**shapes(state["params"]), **jax.tree.map(np.array, params)}
  frozen = {**shapes(state["frozen"]), **jax.tree.map(np.array, frozen)}
  model = nnx.merge(run.layout.graphdef, params, frozen, run.rng_vars)
  with fs.local_dir(out_dir) as local:  # uploaded on exit when out_dir is on gs://
    render.export_released(model.renderer.weights(), fs.join(local, "draction.safetensors"))
  print(f"[skel_llm] renderer exported to {fs.join(out_dir, 'draction.safetensors')}",
        flush=True)
