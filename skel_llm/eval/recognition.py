"""Open-vocabulary recognition: generate, read the `Label:` line, compare with the truth.

The model sees held-out clips with the evaluation prompt (by default the MQA
question over the split's candidate classes, in a fixed order) and decodes
greedily; a reply counts as a hit when it names the true class
(`skel_llm.text.answers.match_label`). Chance is 1 / number of candidates.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Any

import numpy as np
from jax.experimental import multihost_utils

from skel_llm.text import answers


def _until_stop(ids: np.ndarray, stop_id: int) -> np.ndarray:
  hit = np.nonzero(ids == stop_id)[0]
  return ids[:hit[0]] if hit.size else ids


def evaluate(run, state, *, num_clips: int | None = None, write_to: str | None = None
             ) -> dict[str, Any]:
  """Accuracy of the generated labels on `config.eval.num_clips` held-out clips.

  Args:
    run: a `skel_llm.train.trainer.Run` (config, mesh, encoder, layout).
    state: the train state.
    num_clips: override of `config.eval.num_clips`.
    write_to: optional folder for `eval_predictions.jsonl`.
  """
  from skel_llm.train import build
  from skel_llm.train import sharding as shd
  cfg = run.config
  n = int(num_clips if num_clips is not None else cfg.eval.num_clips)
  batch = int(cfg.eval.batch_size)
  dp = shd.data_parallel_size(run.mesh)
  if batch % dp:
    raise ValueError(f"config.eval.batch_size {batch} is not divisible by the data-parallel size "
                     f"{dp}")
  # Every host builds the whole global batch; the device arrays take their shards from it.
  pipe, source = build.pipeline(cfg, run.encoder, "eval", global_batch=batch, whole_batch=True)
  n = min(n, len(source))
  from flax import nnx

  from skel_llm import models
  max_new = int(cfg.eval.max_new_tokens)
  model = nnx.merge(run.layout.graphdef, state["params"], state["frozen"], run.rng_vars)
  render = run.render_fn()
  names = source.class_names
  cands = [names[i] for i in source.candidate_ids]
  hits, total = 0, 0
  per_class = collections.defaultdict(lambda: [0, 0])
  records = []
  steps = -(-n // batch)
  for s in range(steps):
    b = pipe.batch(s)
    dev = run.global_batch_to_device({k: b[k] for k in ("positions", "num_frames", "input_ids",
                                                        "input_mask")})
    frames = render(state, dev["positions"], dev["num_frames"])
    new = models.generate(model.mllm, dev["input_ids"], dev["input_mask"],
                          model.pixel_values(frames), max_new_tokens=max_new,
                          stop_tokens=(run.encoder.im_end_id,), pad_id=run.encoder.pad_id)
    new = np.asarray(multihost_utils.process_allgather(new, tiled=True))
    for r in range(new.shape[0]):
      g = s * batch + r
      if g >= n:  # the last batch is filled up with clips from the start; they do not count
        break
      text = run.encoder.decode(_until_stop(new[r], run.encoder.im_end_id))
      pred = answers.match_label(text, cands)
      truth = int(b["label"][r])
      ok = pred is not None and source.candidate_ids[pred] == truth
      hits += int(ok)
      total += 1
      per_class[names[truth]][0] += int(ok)
      per_class[names[truth]][1] += 1
      records.append({"index": g, "truth": names[truth], "reply": text, "hit": bool(ok)})
  result = {"accuracy": hits / max(total, 1), "num_clips": total, "num_classes": len(cands),
            "chance": 1.0 / len(cands),
            "per_class": {k: v[0] / v[1] for k, v in sorted(per_class.items())}}
  if write_to:
    with open(os.path.join(write_to, "eval_predictions.jsonl"), "w") as f:
      for rec in records:
        f.write(json.dumps(rec) + "\n")
  return result
