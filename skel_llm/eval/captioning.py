"""Motion captioning: greedy captions of held-out clips scored against all their references.

Each clip is asked the caption prompt (`skel_llm.text.prompts.caption_question`); the reply,
cut at the end-of-turn token, is the hypothesis, and every reference caption of the clip
(HumanML3D's texts, or the synthetic generator's two references) is a reference.
Metrics come from `skel_llm.eval.caption_metrics` (pycocoevalcap, sacrebleu, optionally
bert-score), with their protocol in the details. `copy_reference` (a check of the metric
path, never a model score) is not offered: a hypothesis is always the model's reply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skel_llm.eval import caption_metrics
from skel_llm.eval import data as data_lib
from skel_llm.eval import predict as predict_lib


class Captioning:
  """One captioning evaluator (see the module docstring)."""

  def __init__(self, name: str, ev: Any, ctx: Any):
    if ev.prompt not in ("", "caption"):
      raise ValueError(f"config.evals.{name}.prompt {ev.prompt!r}: the captioning evaluator "
                       f"asks the caption prompt; leave prompt empty")
    if ev.bertscore_model and int(ev.bertscore_layers) <= 0:
      raise ValueError(f"config.evals.{name}.bertscore_layers must name the model's layer when "
                       f"bertscore_model is set")
    self.name, self.ev, self.ctx = name, ev, ctx
    self.data = data_lib.EvalData(ctx.config, ev, ctx.encoder, prompt="caption",
                                  rows=ctx.predict.rows(int(ev.batch_size)),
                                  needs_candidates=False)
    self.max_new = int(ev.max_new_tokens) or ctx.answer_budget()

  @property
  def main_metric(self) -> str:
    return "cider_d"

  def run(self, state) -> tuple[dict[str, float], dict[str, Any]]:
    ctx, d, enc = self.ctx, self.data, self.ctx.encoder
    bsz = d.batch_size
    hyps, refs, records = {}, {}, []
    for s in range(d.num_steps):
      b = d.batch(s)
      dev = ctx.predict.to_device({k: b[k] for k in ("positions", "num_frames", "input_ids",
                                                     "input_mask", "index")}, bsz)
      frames = ctx.predict.render(state, dev["positions"], dev["num_frames"], d.topology)
      new = ctx.predict.generate(state, frames, dev["input_ids"], dev["input_mask"],
                                 max_new_tokens=self.max_new, stop_id=enc.im_end_id,
                                 pad_id=enc.pad_id)
      index = predict_lib.gather(dev["index"])
      for r in range(bsz):
        g = int(index[r])
        if g >= d.num_clips or g in hyps:
          continue
        ids = new[r]
        stop = np.nonzero(ids == enc.im_end_id)[0]
        reply = enc.decode(ids[:stop[0]] if stop.size else ids).strip()
        clip = d.clip(g)
        caps = [c for c in (clip.captions or ()) if c.strip()]
        if not caps:
          raise ValueError(f"config.evals.{self.name}: clip {clip.key!r} has no reference "
                           f"caption")
        # An empty reply still counts (it scores 0); PTB tokenisation needs a token.
        hyps[g], refs[g] = reply or ".", caps
        records.append({"index": g, "key": clip.key, "reply": reply, "references": caps})
    scalars, notes = caption_metrics.score(
        hyps, refs, bertscore_model=self.ev.bertscore_model,
        bertscore_layers=int(self.ev.bertscore_layers),
        bertscore_baseline=self.ev.bertscore_baseline, bertscore_idf=bool(self.ev.bertscore_idf))
    return scalars, {**notes, "records": sorted(records, key=lambda x: x["index"])}
