"""Pins skel_llm/train/state.py + sharding.py at full size, shapes only (jax.eval_shape).

The paper's composed model (DrAction + InternVL3-8B with LoRA r 32) is laid out on a
(data 2, fsdp 2, tensor 2) mesh of the 8 simulated devices with the stage-3 rules: nothing is
allocated, every sharded dimension divides, and only the trainable subset has optimizer state.
"""

import jax
import numpy as np
import pytest
from flax import nnx

from skel_llm import models, render
from skel_llm.train import defaults, model as model_lib, optimizer, sharding, state


@pytest.mark.parametrize("scan", [False, True])
def test_paper_model_layout_is_sharded_and_frozen_parts_have_no_optimizer_state(scan):
  cfg = models.internvl3_8b(image_size=448, dtype="bfloat16", param_dtype="bfloat16",
                            lora=models.LoRAConfig(rank=32, alpha=64.0, dropout=0.05),
                            scan_layers=scan)

  def make():
    rngs = nnx.Rngs(0)
    return model_lib.SkeletonLLM(render.DrAction("ntu25", rngs=rngs),
                                 models.InternVL(cfg, rngs=rngs), num_frames=12, image_size=448)
  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2), jax.devices()[:8])
  trainable = (defaults.RENDERER, defaults.PROJECTOR, defaults.LORA)
  tx = optimizer.make_optimizer(dict(lr=2e-5, weight_decay=0.05), 1000)
  lay = state.build_layout(make, trainable=trainable, tx=tx, mesh=mesh,
                           rules=sharding.check_rules(defaults.SHARDING_RULES))
  n_tr, n_fr = lay.num_params("params"), lay.num_params("frozen")
  assert 7.5e9 < n_tr + n_fr < 8.5e9, (n_tr, n_fr)
  assert n_tr < 0.02 * n_fr  # renderer + projector + LoRA only
  assert all(p.startswith(("renderer/", "mllm/multi_modal_projector/")) or "lora_" in p
             for p in lay.trainable_paths)
  assert not any("lora_" in p for p in lay.frozen_paths)
  n_opt = sum(x.size for x in jax.tree.leaves(lay.abstract["opt_state"]))
  assert n_opt <= 2 * n_tr + 4
  # Every leaf has a sharding whose split dimensions divide; the big ones are split.
  split_bytes = 0
  for x in jax.tree.leaves(lay.abstract):
    spec = x.sharding.spec
    for dim, axes in zip(x.shape, tuple(spec) + (None,) * (len(x.shape) - len(spec))):
      if axes is not None:
        names = axes if isinstance(axes, tuple) else (axes,)
        assert dim % int(np.prod([mesh.shape[a] for a in names])) == 0
    if any(a is not None for a in spec):
      split_bytes += x.size * x.dtype.itemsize
  total = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(lay.abstract))
  assert split_bytes > 0.95 * total
  emb = lay.abstract["frozen"]["mllm"]["language_model"]["embed_tokens"]
  assert emb.sharding.spec == jax.sharding.PartitionSpec("tensor", "fsdp")
