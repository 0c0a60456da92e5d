"""YES/NO questions (Discriminative Finetuning): accuracy on positive and negative questions.

Every clip is asked twice: about its true class (the answer should be YES) and about one
confusable other candidate (NO): the first of its confusable classes among the candidates
(`config.data.confusable_file`, else the classes whose names share most words), chosen the
same way for every evaluation. Replies are read by `skel_llm.text.answers.parse_yes_no`;
one that starts with neither word counts as wrong and as `unparsed`. A model that says YES
to everything scores 1.0 on positives and 0.0 on negatives: `balanced` (their mean) is 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skel_llm.data import pipeline as pipeline_lib
from skel_llm.eval import data as data_lib
from skel_llm.eval import predict as predict_lib
from skel_llm.text import answers



class YesNo:
  """One YES/NO evaluator (see the module docstring)."""

  def __init__(self, name: str, ev: Any, ctx: Any):
    self.name, self.ev, self.ctx = name, ev, ctx
    if ev.prompt not in ("", "yesno"):
      raise ValueError(f"config.evals.{name}.prompt {ev.prompt!r}: the yesno evaluator asks "
                       f"YES/NO questions; leave prompt empty")
    self.data = data_lib.EvalData(ctx.config, ev, ctx.encoder, prompt="mqa",
                                  rows=ctx.predict.rows(int(ev.batch_size)))
    d = self.data
    cfg = ctx.config.data
    path = d.data_cfg.get("confusable_file") or cfg.get("confusable_file")
    names = d.source.class_names
    table = (pipeline_lib.load_confusable(path, names) if path
             else pipeline_lib.confusable_by_names(names))
    cands = set(d.candidate_ids)
    if len(cands) < 2:
      raise ValueError(f"config.evals.{name}: a negative question needs at least two "
                       f"candidate classes, the split has {len(cands)}")
    self.negative = {}
    for c in d.candidate_ids:
      options = [j for j in table.get(c, []) if j in cands and j != c]
      self.negative[c] = options[0] if options else next(j for j in d.candidate_ids if j != c)

  @property
  def main_metric(self) -> str:
    return "balanced"

  def run(self, state) -> tuple[dict[str, float], dict[str, Any]]:
    ctx, d, enc = self.ctx, self.data, self.ctx.encoder
    bsz = d.batch_size
    names = d.source.class_names
    records = []
    for s in range(d.num_steps):
      b = d.batch(s)
      clips = ctx.predict.to_device({"positions": b["positions"],
                                     "num_frames": b["num_frames"]}, bsz)
      frames = ctx.predict.render(state, clips["positions"], clips["num_frames"],
                                  d.topology)  # once
      for positive in (True, False):
        asked = [int(x) if positive else self.negative[int(x)] for x in b["label"]]
        enc_q = [enc.encode(d.question(names[a]), None) for a in asked]
        local = {"input_ids": np.stack([e.input_ids for e in enc_q]),
                 "input_mask": np.stack([e.input_mask for e in enc_q]),
                 "asked": np.asarray(asked, np.int32), "label": b["label"], "index": b["index"]}
        dev = ctx.predict.to_device(local, bsz)
        new = ctx.predict.generate(state, frames, dev["input_ids"], dev["input_mask"],
                                   max_new_tokens=int(self.ev.max_new_tokens),
                                   stop_id=enc.im_end_id, pad_id=enc.pad_id)
        index, label, asked_g = (predict_lib.gather(dev[k]) for k in ("index", "label", "asked"))
        for r in range(bsz):
          if index[r] >= d.num_clips:
            continue
          ids = new[r]
          stop = np.nonzero(ids == enc.im_end_id)[0]
          reply = enc.decode(ids[:stop[0]] if stop.size else ids)
          ok = answers.parse_yes_no(reply) is positive
          records.append({"index": int(index[r]), "truth": names[int(label[r])],
                          "asked": names[int(asked_g[r])], "expected": "YES" if positive else
                          "NO", "reply": reply, "hit": bool(ok)})
    scalars = summarise(records)
    return scalars, {"records": sorted(records, key=lambda x: (x["index"], x["expected"]))}


def summarise(records: list[dict]) -> dict[str, float]:
  """Accuracy on positive and negative questions, their mean, and the unparsed fraction.

  `records`: dicts with `expected` ('YES' or 'NO') and `reply` (the generated text).
  """
  right = {"YES": 0, "NO": 0}
  total = {"YES": 0, "NO": 0}
  unparsed = 0
  for rec in records:
    said = answers.parse_yes_no(rec["reply"])
    unparsed += int(said is None)
    total[rec["expected"]] += 1
    right[rec["expected"]] += int(said is (rec["expected"] == "YES"))
  pos = right["YES"] / max(total["YES"], 1)
  neg = right["NO"] / max(total["NO"], 1)
  return {"positive": pos, "negative": neg, "balanced": (pos + neg) / 2,
          "unparsed": unparsed / max(len(records), 1), "num_clips": float(total["YES"]),
          "chance": 0.5}
