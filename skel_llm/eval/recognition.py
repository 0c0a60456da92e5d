"""Zero-shot (open-vocabulary) recognition: by greedy generation and by likelihood ranking.

`method="decode"`: the model answers the evaluator's prompt greedily (KV cache,
`max_new_tokens`, `repetition_penalty`); the reply is scored by the authors' substring rule
and by our strict rule side by side (`skel_llm.eval.metrics`).

`method="score"`: every candidate's answer `Label: <name><|im_end|>` is ranked by its
log-likelihood after the prompt, from one shared-prefix KV cache; top-1 and top-5 are
reported for the summed log-probability (`top1`, `top5`) and for the mean per token
(`top1_mean`, `top5_mean`), which does not favour short names. With the `reason` prompt
the model first writes its reasoning (greedy); the label line is then ranked after its own
reasoning, cut before the reply's last `Label:` (the whole reply when it has none).

Outputs per evaluation: scalars (accuracies, chance, the 1-person / 2-person breakdown),
per-class accuracy, a confusion matrix (strict rule or top-1; rows truth, columns prediction
plus "unparsed") and every reply.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skel_llm.eval import data as data_lib
from skel_llm.eval import metrics
from skel_llm.eval import predict as predict_lib
from skel_llm.text import prompts

METHODS = ("decode", "score")


def _until(ids: np.ndarray, stop_id: int) -> np.ndarray:
  hit = np.nonzero(ids == stop_id)[0]
  return ids[:hit[0]] if hit.size else ids


def candidate_tokens(encoder: Any, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """(int32[C, M] ids, int32[C, M] mask) of every candidate's answer `Label: <name><|im_end|>`,
  right-padded: what `PredictFns.score` ranks."""
  cand = [encoder.tok.encode(prompts.mqa_answer(n)) + [encoder.im_end_id] for n in names]
  m = max(len(c) for c in cand)
  ids = np.full((len(cand), m), encoder.pad_id, np.int32)
  mask = np.zeros((len(cand), m), np.int32)
  for i, c in enumerate(cand):
    ids[i, :len(c)], mask[i, :len(c)] = c, 1
  return ids, mask


def reasoning_tokens(encoder: Any, reply: str, width: int) -> tuple[np.ndarray, np.ndarray]:
  """(int32[width] ids, int32[width] mask): the model's own reasoning, cut before its last
  `Label:` (the whole reply when it has none), appended to the prompt before the label line
  is ranked."""
  cut = reply.lower().rfind("label:")
  tokens = encoder.tok.encode(reply[:cut] if cut >= 0 else reply)[:width]
  ids = np.full((width,), encoder.pad_id, np.int32)
  mask = np.zeros((width,), np.int32)
  ids[:len(tokens)], mask[:len(tokens)] = tokens, 1
  return ids, mask


class Recognition:
  """One recognition evaluator (see the module docstring)."""

  def __init__(self, name: str, ev: Any, ctx: Any, *, corruption: tuple[str, float, int] | None
               = None):
    if ev.method not in METHODS:
      raise ValueError(f"config.evals.{name}.method {ev.method!r} is unknown; use one of "
                       f"{METHODS}")
    if not ev.repetition_penalty > 0:
      raise ValueError(f"config.evals.{name}.repetition_penalty must be positive")
    self.name, self.ev, self.ctx = name, ev, ctx
    self.prompt = ev.prompt or ctx.config.data.eval_task
    if self.prompt not in ("mqa", "reason"):
      raise ValueError(f"config.evals.{name}.prompt {self.prompt!r}: recognition asks with "
                       f"'mqa' or 'reason' (YES/NO questions have the 'yesno' evaluator)")
    self.data = data_lib.EvalData(ctx.config, ev, ctx.encoder, prompt=self.prompt,
                                  rows=ctx.predict.rows(int(ev.batch_size)))
    self.corruption = corruption
    self.needs_reply = ev.method == "decode" or self.prompt == "reason"
    self.max_new = int(ev.max_new_tokens) or ctx.answer_budget()
    self._parent = data_lib.parents(self.data.topology)
    self._cand_ids, self._cand_mask = candidate_tokens(ctx.encoder, self.data.candidates)

  @property
  def main_metric(self) -> str:
    return "strict" if self.ev.method == "decode" else "top1"

  def _positions(self, b: dict, step: int) -> np.ndarray:
    if self.corruption is None:
      return b["positions"]
    kind, level, seed = self.corruption
    # One generator per (seed, batch, row): the corruption of a clip does not depend on which
    # host reads it.
    out = np.empty_like(b["positions"])
    for r, g in enumerate(b["index"]):
      rng = np.random.default_rng([int(seed), int(g), int(round(level * 1e4)),
                                   data_lib.CORRUPTIONS.index(kind)])
      out[r] = data_lib.corrupt(b["positions"][r:r + 1], b["num_frames"][r:r + 1], kind, level,
                                rng, self._parent)[0]
    return out

  def run(self, state) -> tuple[dict[str, float], dict[str, Any]]:
    """(scalars, details) over `num_clips` clips; every host returns the same values."""
    ctx, d, enc = self.ctx, self.data, self.ctx.encoder
    bsz = d.batch_size
    cands = d.candidates
    summary_strict = metrics.Summary(cands, d.two_person())
    summary_authors = metrics.Summary(cands, d.two_person())
    unlabelled = 0
    records = []
    scores_all, truths_all, persons_all = [], [], []
    for s in range(d.num_steps):
      b = d.batch(s)
      local = {"positions": self._positions(b, s), "num_frames": b["num_frames"],
               "input_ids": b["input_ids"], "input_mask": b["input_mask"],
               "candidate": b["candidate"], "persons": b["persons"], "index": b["index"]}
      dev = ctx.predict.to_device(local, bsz)
      frames = ctx.predict.render(state, dev["positions"], dev["num_frames"], d.topology)
      truth, persons, index = (predict_lib.gather(dev[k])
                               for k in ("candidate", "persons", "index"))
      replies = [""] * bsz
      if self.needs_reply:
        new = ctx.predict.generate(state, frames, dev["input_ids"], dev["input_mask"],
                                   max_new_tokens=self.max_new, stop_id=enc.im_end_id,
                                   pad_id=enc.pad_id,
                                   repetition_penalty=float(self.ev.repetition_penalty))
        replies = [enc.decode(_until(new[r], enc.im_end_id)) for r in range(bsz)]
      scores = None
      if self.ev.method == "score":
        scores = self._score(state, frames, dev, b, replies)
      for r in range(bsz):
        if index[r] >= d.num_clips:  # filler rows of the last batch
          continue
        t = int(truth[r])
        rec = {"index": int(index[r]), "truth": cands[t]}
        if self.needs_reply:
          rec["reply"] = replies[r]
        if self.ev.method == "decode":
          pred = metrics.strict_prediction(replies[r], cands)
          hit = metrics.authors_hit(replies[r], cands[t])
          unlabelled += int(not metrics.has_label_line(replies[r]))
          summary_strict.add(t, pred, persons=int(persons[r]))
          summary_authors.add(t, pred, persons=int(persons[r]), hit=hit)
          rec.update(strict=None if pred is None else cands[pred], authors_hit=hit)
        else:
          scores_all.append(scores[r])
          truths_all.append(t)
          persons_all.append(int(persons[r]))
          top = int(np.argmax(scores[r]))
          summary_strict.add(t, top, persons=int(persons[r]))
          rec.update(top1=cands[top], logp=[float(x) for x in scores[r]])
        records.append(rec)
    n = summary_strict.count
    scalars: dict[str, float] = {"num_clips": float(n), "chance": 1.0 / len(cands)}
    details: dict[str, Any] = {"candidates": cands, "prompt": self.prompt,
                               "method": self.ev.method, "records": records}
    if self.ev.method == "decode":
      scalars.update(strict=summary_strict.accuracy(), authors=summary_authors.accuracy(),
                     unlabelled=unlabelled / max(n, 1),
                     unparsed=float(summary_strict.confusion[:, -1].sum()) / max(n, 1))
      for k, v in summary_strict.by_persons().items():
        scalars[f"strict_{k}"] = v
      for k, v in summary_authors.by_persons().items():
        scalars[f"authors_{k}"] = v
      details["per_class"] = {"strict": summary_strict.per_class(),
                              "authors": summary_authors.per_class()}
    else:
      sc = np.asarray(scores_all, np.float64).reshape(n, len(cands))
      tr = np.asarray(truths_all, np.int64)
      lengths = self._cand_mask.sum(axis=1)
      k = min(int(self.ev.topk), len(cands))
      scalars.update(top1=float(metrics.topk_hits(sc, tr, 1).mean()),
                     top1_mean=float(metrics.topk_hits(sc / lengths, tr, 1).mean()))
      scalars[f"top{k}"] = float(metrics.topk_hits(sc, tr, k).mean())
      scalars[f"top{k}_mean"] = float(metrics.topk_hits(sc / lengths, tr, k).mean())
      for key, v in summary_strict.by_persons().items():
        scalars[f"top1_{key}"] = v
      details["per_class"] = {"top1": summary_strict.per_class()}
      details["candidate_tokens"] = lengths.tolist()
    details["confusion"] = summary_strict.confusion_json()
    return scalars, details

  def _score(self, state, frames, dev, b, replies) -> np.ndarray:
    """float[B, C] summed log-probabilities of every candidate's label line."""
    ctx, enc, bsz = self.ctx, self.ctx.encoder, self.data.batch_size
    rows = len(b["index"])
    c, m = self._cand_ids.shape
    cand_ids = np.broadcast_to(self._cand_ids, (rows, c, m)).copy()
    cand_mask = np.broadcast_to(self._cand_mask, (rows, c, m)).copy()
    prefix_ids, prefix_mask = b["input_ids"], b["input_mask"]
    if self.prompt == "reason":
      # This host's rows: its prompt followed by the model's own reasoning (fixed width).
      extra = np.full((rows, self.max_new), enc.pad_id, np.int32)
      extra_mask = np.zeros((rows, self.max_new), np.int32)
      for r, g in enumerate(b["index"]):
        extra[r], extra_mask[r] = reasoning_tokens(enc, replies[int(g) % bsz], self.max_new)
      prefix_ids = np.concatenate([prefix_ids, extra], axis=1)
      prefix_mask = np.concatenate([prefix_mask, extra_mask], axis=1)
    dev2 = ctx.predict.to_device({"prefix_ids": prefix_ids, "prefix_mask": prefix_mask,
                                  "cand_ids": cand_ids, "cand_mask": cand_mask}, bsz)
    return ctx.predict.score(state, frames, dev2["prefix_ids"], dev2["prefix_mask"],
                             dev2["cand_ids"], dev2["cand_mask"])
