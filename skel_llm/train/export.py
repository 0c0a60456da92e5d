"""What a finished stage hands on: the trained renderer in the authors' released format and,
optionally, the LoRA-merged LLM in the transformers layout (`config.export`).
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx

from skel_llm import fs


def export(run, state: dict, workdir: str) -> None:
  """Trained renderer -> released safetensors; LoRA-merged LLM -> transformers layout.

  Every process calls it: the variables are first gathered into whole host (numpy) arrays,
  a collective over all hosts (sharded leaves span several of them), then process 0 writes.
  """
  ex = run.config.get("export", {})
  if not (ex and (ex.get("renderer", False) or ex.get("merged_hf", False))):
    return
  from jax.experimental import multihost_utils
  whole = bool(ex.get("merged_hf", False))
  # Only what is written is gathered: a renderer-only export leaves the LLM (gigabytes on a
  # pod) on its devices and merges it as shapes alone.
  pick = (lambda tree: tree) if whole else (
      lambda tree: {k: v for k, v in tree.items() if k == "renderer"})
  params, frozen = multihost_utils.process_allgather((pick(state["params"]),
                                                      pick(state["frozen"])), tiled=True)
  if jax.process_index() != 0:
    return
  # Writable copies: the gathered arrays may be read-only views, and merge_lora folds in place.
  params, frozen = jax.tree.map(np.array, (params, frozen))
  if not whole:
    shapes = lambda tree: jax.tree.map(  # noqa: E731
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)
    params = {**shapes(state["params"]), **params}
    frozen = {**shapes(state["frozen"]), **frozen}
  model = nnx.merge(run.layout.graphdef, params, frozen, run.rng_vars)
  out_dir = fs.join(workdir, "export")
  # safetensors and the transformers layout write local files: on gs:// they are written to a
  # local folder and uploaded.
  with fs.local_dir(out_dir) as local:
    if ex.get("renderer", False):
      from skel_llm import render
      render.export_released(model.renderer.weights(), fs.join(local, "draction.safetensors"))
    if ex.get("merged_hf", False):
      from skel_llm import models
      models.merge_lora(model.mllm)
      models.export_hf(model.mllm, fs.join(local, "internvl_merged"), tokenizer=run.tokenizer.raw)
  if ex.get("renderer", False):
    print(f"[skel_llm] renderer exported to {fs.join(out_dir, 'draction.safetensors')}",
          flush=True)
  if ex.get("merged_hf", False):
    print(f"[skel_llm] LoRA-merged model exported to {fs.join(out_dir, 'internvl_merged')}",
          flush=True)
