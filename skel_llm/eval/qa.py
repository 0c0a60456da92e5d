"""Skeleton question answering: accuracy per question type (temporal, causal, spatial).

Every question of every evaluated clip is asked (`skel_llm.text.prompts.qa_question`, the
clip's options in their stored order) and answered greedily; the reply is read by
`skel_llm.text.answers.parse_choice` (a leading letter, else the option it names). An
unreadable reply counts as wrong and as `unparsed`. Chance is the mean of 1 / options over
the asked questions, per type and overall.

Some templates have one answer per question text (docs/skeleton_qa.md), so a model can score
above chance without looking at the skeleton. `text_only` (per type too) is the accuracy of
a baseline that never sees the clip: for each asked question, the answer most often given to
the same question text with the same options among the first `text_baseline_clips` training
clips (0 turns it off).
"""

from __future__ import annotations

from typing import Any

import collections

import numpy as np

from skel_llm.eval import data as data_lib
from skel_llm.eval import predict as predict_lib
from skel_llm.text import answers, prompts

QA_TYPES = ("temporal", "causal", "spatial")


class QA:
  """One QA evaluator (see the module docstring)."""

  def __init__(self, name: str, ev: Any, ctx: Any):
    if ev.prompt not in ("", "qa"):
      raise ValueError(f"config.evals.{name}.prompt {ev.prompt!r}: the qa evaluator asks the "
                       f"clips' questions; leave prompt empty")
    self.name, self.ev, self.ctx = name, ev, ctx
    self.data = data_lib.EvalData(ctx.config, ev, ctx.encoder, prompt="qa",
                                  rows=ctx.predict.rows(int(ev.batch_size)),
                                  needs_candidates=False)
    d = self.data
    self.items = {}
    for g in range(d.num_clips):
      clip = d.clip(g)
      if not clip.qa:
        raise ValueError(f"config.evals.{name}: clip {clip.key!r} has no QA questions (use "
                         f"classes with questions, `skel_llm.synthetic.qa.QA_LABELS`)")
      self.items[g] = clip.qa
    self.slots = max(len(v) for v in self.items.values())
    self.text_answers = None
    n = int(ev.text_baseline_clips)
    if n > 0:
      from skel_llm.data import sources
      train = sources.make_source(d.data_cfg, "train")
      self.text_answers = text_answers(
          [q for i in range(min(n, len(train))) for q in (train[i].qa or ())])

  @property
  def main_metric(self) -> str:
    return "accuracy"

  def run(self, state) -> tuple[dict[str, float], dict[str, Any]]:
    ctx, d, enc = self.ctx, self.data, self.ctx.encoder
    bsz = d.batch_size
    nf = d.pipe.builder.num_frames
    records = []
    for s in range(d.num_steps):
      b = d.batch(s)
      clips = ctx.predict.to_device({"positions": b["positions"],
                                     "num_frames": b["num_frames"]}, bsz)
      frames = ctx.predict.render(state, clips["positions"], clips["num_frames"],
                                  d.topology)  # once
      for q in range(self.slots):
        rows = [self.items.get(int(g) % max(d.num_clips, 1), ()) for g in b["index"]]
        asked = [items[q] if q < len(items) else items[0] for items in rows]
        enc_q = [enc.encode(prompts.qa_question(nf, it.question, it.options), None)
                 for it in asked]
        local = {"input_ids": np.stack([e.input_ids for e in enc_q]),
                 "input_mask": np.stack([e.input_mask for e in enc_q]), "index": b["index"]}
        dev = ctx.predict.to_device(local, bsz)
        new = ctx.predict.generate(state, frames, dev["input_ids"], dev["input_mask"],
                                   max_new_tokens=int(self.ev.max_new_tokens),
                                   stop_id=enc.im_end_id, pad_id=enc.pad_id)
        index = predict_lib.gather(dev["index"])
        for r in range(bsz):
          g = int(index[r])
          if g >= d.num_clips or q >= len(self.items[g]):
            continue
          item = self.items[g][q]
          ids = new[r]
          stop = np.nonzero(ids == enc.im_end_id)[0]
          reply = enc.decode(ids[:stop[0]] if stop.size else ids)
          said = answers.parse_choice(reply, item.options)
          records.append({"index": g, "slot": q, "type": item.type, "template": item.template,
                          "question": item.question, "options": list(item.options),
                          "answer": item.answer_text, "reply": reply,
                          "picked": None if said is None else item.options[said],
                          "hit": said == item.answer, "chance": 1.0 / len(item.options)})
    records.sort(key=lambda x: (x["index"], x["slot"]))
    if self.text_answers is not None:
      for r in records:
        r["text_only_hit"] = self.text_answers.get(_key(r["question"], r["options"])) == r["answer"]
    return summarise(records), {"records": records}


def _key(question: str, options) -> tuple:
  return (question, tuple(sorted(options)))


def text_answers(items) -> dict[tuple, str]:
  """{(question, sorted options): the answer most often given} over training questions."""
  votes: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
  for q in items:
    votes[_key(q.question, q.options)][q.answer_text] += 1
  return {k: v.most_common(1)[0][0] for k, v in votes.items()}


def summarise(records: list[dict]) -> dict[str, float]:
  """Accuracy and chance overall and per question type, the unparsed fraction, counts."""
  out: dict[str, float] = {}
  for t in (None,) + QA_TYPES:
    sel = [r for r in records if t is None or r["type"] == t]
    if not sel:
      continue
    key = "" if t is None else f"{t}_"
    out[f"{key}accuracy"] = float(np.mean([r["hit"] for r in sel]))
    out[f"{key}chance"] = float(np.mean([r["chance"] for r in sel]))
    out[f"{key}questions"] = float(len(sel))
    if all("text_only_hit" in r for r in sel):
      out[f"{key}text_only"] = float(np.mean([r["text_only_hit"] for r in sel]))
  out["unparsed"] = float(np.mean([r["picked"] is None for r in records])) if records else 0.0
  out["num_clips"] = float(len({r["index"] for r in records}))
  return out
