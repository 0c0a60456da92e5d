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

import jax
import numpy as np
from jax.experimental import multihost_utils

from skel_llm.eval import generate as generate_lib
from skel_llm.text import answers


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
  stop_id = run.encoder.im_end_id
  gen = jax.jit(generate_lib.make_generate(run.layout.graphdef, run.rng_vars,
                                           max_new_tokens=int(cfg.eval.max_new_tokens),
                                           stop_id=stop_id))
  names = source.class_names
  cands = [names[i] for i in source.candidate_ids]
  hits, total = 0, 0
  per_class = collections.defaultdict(lambda: [0, 0])
  records = []
  steps = -(-n // batch)
  for s in range(steps):
    b = pipe.batch(s)
    lengths = b["input_mask"].sum(axis=1)
    if int(lengths.max()) + int(cfg.eval.max_new_tokens) > b["input_ids"].shape[1]:
      raise ValueError(f"evaluation prompts take {int(lengths.max())} tokens; with "
                       f"config.eval.max_new_tokens={cfg.eval.max_new_tokens} they exceed "
                       f"config.data.max_len={b['input_ids'].shape[1]}")
    dev = run.global_batch_to_device({k: b[k] for k in ("positions", "num_frames", "input_ids",
                                                        "input_mask")})
    ids, count = gen(state, dev["positions"], dev["num_frames"], dev["input_ids"],
                     dev["input_mask"])
    ids = np.asarray(multihost_utils.process_allgather(ids, tiled=True))
    count = np.asarray(multihost_utils.process_allgather(count, tiled=True))
    for r in range(ids.shape[0]):
      g = s * batch + r
      if g >= n:  # the last batch is filled up with clips from the start; they do not count
        break
      new = ids[r, lengths[r]:lengths[r] + count[r]]
      text = run.encoder.decode(new)
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
