r"""Does the pretrained asset name stick figures of classes it was never shown?

    python -m skel_llm.pretrain.probe [--asset=DIR] [--clips=6] [--json=out.json]

The asset (`skel_llm.models.pretrained`) is pretrained on stick-figure clips of every
single-person synthetic class but the unseen verb/part combinations (`corpus.EXCLUDED`, which
hold the `demo_pretrained` presets' unseen classes). Before any SkeletonLLM stage, this probe
asks it the corpus's own `choice` question about new clips drawn in the corpus's stick style
family (new clip seeds, new styles) and reads its answer two ways, as the recognition
evaluators do: the likelihood ranking of every candidate's `Label: <name>` line (summed
log-probability, `models.score_candidates`) and its greedy reply (strict rule,
`eval.metrics.strict_prediction`), and measures how much the picture matters (the same
questions over black frames). Protocols (`protocols()`):

  seen          clips of the 12 `demo_pretrained` seen classes, the 12 seen names as candidates
                (classes it was pretrained on; chance 1/12)
  unseen        clips of the 8 unseen classes, the 8 unseen names (zero-shot; chance 1/8)
  unseen_in_all clips of the 8 unseen classes, all 20 names (does it prefer names it learnt?)
  pretraining   the corpus's own first `choice` samples (trained on: samples 0 .. 3,999 of
                the committed asset), each with its own 4-8 candidates: has it learnt to name
                what it was shown at all?

The question lists the candidates in an order drawn per clip (`default_rng([PROBE_SEED,
seed])`), as the corpus shuffles its own. Clip i of a protocol's class k has generator seed
`SEED_BASE + 1000 * k + i` and style `(style_seed, SEED_BASE + 1000 * k + i)`: 30,000,000 + ...
lies outside the corpus's seeds (20,000,000 + sample index: 4,000 samples for the committed
asset, 500 steps x 8) and the stage runs' (0 + i training, 10,000,000 + i evaluation)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from typing import Any

import numpy as np

SEED_BASE = 30_000_000
PROBE_SEED = 7


def protocols() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None]:
  """{name: (clip classes, candidate names)}; `pretraining`: None (the corpus's samples)."""
  from skel_llm.train import defaults
  seen, unseen = defaults.DEMO_PRETRAINED_SEEN, defaults.DEMO_PRETRAINED_UNSEEN
  return {"seen": (seen, seen), "unseen": (unseen, unseen),
          "unseen_in_all": (unseen, seen + unseen), "pretraining": None}


@dataclasses.dataclass
class Asset:
  """The asset's model with the corpus's encoder and spec (what its pretraining saw)."""

  model: Any
  encoder: Any
  spec: Any
  record: dict

  @classmethod
  def load(cls, folder=None) -> "Asset":
    from skel_llm.models import checkpoint, pretrained
    from skel_llm.pretrain import builder
    from skel_llm.train import build as build_lib
    folder = pathlib.Path(folder or pretrained.ASSET_DIR)
    record = pretrained.verify(folder)  # every file's sha256 against its provenance record
    config = builder.config_from_record(record)
    stage = builder._stage_like(config)  # the builder's own tokenizer, chat encoder, model
    tokenizer = build_lib.tokenizer(stage)
    mcfg = build_lib.mllm_config(stage, tokenizer)
    _, layout = checkpoint.read_config(folder)
    model = checkpoint.load_params(folder, mcfg, layout)
    return cls(model, build_lib.encoder(stage, tokenizer), builder.corpus_spec(config), record)


def clip_seed(class_index: int, i: int) -> int:
  return SEED_BASE + 1000 * class_index + i


def pretraining_questions(asset: Asset, count: int):
  """The corpus's first `count` `choice` samples, as `questions` lists them (sample index in
  place of the clip seed; the candidates in the question's order)."""
  import re
  from skel_llm.pretrain import corpus
  c = corpus.Corpus(asset.spec, asset.encoder)
  out, g = [], 0
  while len(out) < count:
    frames, user, answer, _ = c.example(g)
    if "\nWhich action is performed? Candidates: " in user:
      listed = re.search(r"Candidates: (.*)\.\nReply with", user)
      if listed is None:
        raise ValueError(f"pretraining sample {g}: no candidate list in {user!r}")
      out.append((answer[len("Label: "):], g, frames, listed.group(1).split("; "), user))
    g += 1
  return out


def questions(asset: Asset, classes, candidates, clips: int):
  """[(class name, clip seed, frames float32[n, S, S, 3], candidate order, user message)]."""
  from skel_llm.pretrain import corpus
  out = []
  for k, name in enumerate(classes):
    for i in range(clips):
      seed = clip_seed(k, i)
      frames, _ = corpus.stick_frames(asset.spec, name, seed, (asset.spec.style_seed, seed))
      rng = np.random.default_rng([PROBE_SEED, seed])
      order = [candidates[j] for j in rng.permutation(len(candidates))]
      out.append((name, seed, frames, order, corpus.choice_question(asset.spec.num_frames, order)))
  return out


def score(asset: Asset, frames: np.ndarray, users: list[str], names: list[str]) -> np.ndarray:
  """float32[B, C] summed log p(`Label: <name>` + end | question, frames), C = len(names)."""
  from skel_llm import models
  from skel_llm.eval import recognition
  enc = asset.encoder
  prompts = [enc.encode(u, None) for u in users]
  cand_ids, cand_mask = recognition.candidate_tokens(enc, list(names))
  b, (c, m) = len(users), cand_ids.shape
  logp = models.score_candidates(
      asset.model, np.stack([p.input_ids for p in prompts]),
      np.stack([p.input_mask for p in prompts]), pixel_values(frames),
      np.broadcast_to(cand_ids, (b, c, m)).copy(), np.broadcast_to(cand_mask, (b, c, m)).copy())
  return np.asarray(logp)


def pixel_values(frames: np.ndarray) -> np.ndarray:
  """float32[B, n, S, S, 3] frames -> the model's float32[B, n, 3, S, S], as the corpus feeds it."""
  return np.transpose(np.asarray(frames, np.float32), (0, 1, 4, 2, 3))


def greedy(asset: Asset, frames: np.ndarray, users: list[str], max_new_tokens: int = 16
           ) -> list[str]:
  from skel_llm import models
  enc = asset.encoder
  prompts = [enc.encode(u, None) for u in users]
  new = models.generate(asset.model, np.stack([p.input_ids for p in prompts]),
                        np.stack([p.input_mask for p in prompts]), pixel_values(frames),
                        max_new_tokens=max_new_tokens, stop_tokens=(enc.im_end_id,),
                        pad_id=enc.pad_id)
  out = []
  for row in np.asarray(new):  # up to the first end token, as the recognition evaluator reads
    stop = np.nonzero(row == enc.im_end_id)[0]
    out.append(enc.decode(row[:stop[0]] if stop.size else row))
  return out


def run_protocol(asset: Asset, name: str, clips: int, batch: int = 8) -> dict:
  """Top-1 / top-5 of the likelihood ranking, the greedy replies' strict accuracy and the
  picture's effect: the median over clips of max over candidates |log p(frames) - log p(black
  frames)| (nats; 0: the answer does not depend on the picture). `pretraining`: `clips` x 8
  samples, as many as `unseen` has."""
  from skel_llm.eval import metrics
  spec = protocols()[name]
  if spec is None:
    items = pretraining_questions(asset, 8 * clips)
    groups = [[x] for x in items]  # each sample its own candidates
  else:
    classes, candidates = spec
    items = questions(asset, classes, candidates, clips)
    # Scored in the fixed candidate order (the question lists them shuffled per clip).
    items = [(t, sd, f, list(candidates), u) for t, sd, f, _, u in items]
    groups = [items[s:s + batch] for s in range(0, len(items), batch)]
  top1 = top5 = strict = 0
  chance, effect = 0.0, []
  replies: dict[str, int] = {}
  for part in groups:
    frames = np.stack([x[2] for x in part])
    users = [x[4] for x in part]
    cands = part[0][3]
    logp = score(asset, frames, users, cands)
    # Does the picture matter? The same questions over black frames (no figure, no colours).
    effect += list(np.abs(logp - score(asset, np.zeros_like(frames), users, cands)).max(-1))
    for (truth, _, _, _, _), row, reply in zip(part, logp, greedy(asset, frames, users)):
      t = cands.index(truth)
      order = np.argsort(-row, kind="stable")
      top1 += int(order[0] == t)
      top5 += int(t in order[:5])
      strict += int(metrics.strict_prediction(reply, cands) == t)
      chance += 1.0 / len(cands)
      key = reply.strip()
      replies[key] = replies.get(key, 0) + 1
  n = len(items)
  return {"clips": n, "candidates": len(items[0][3]) if spec else "4-8", "chance": chance / n,
          "top1": top1 / n, "top5": top5 / n, "strict": strict / n,
          "picture_effect": float(np.median(effect)), "picture_effects": [float(e) for e in effect],
          "replies": dict(sorted(replies.items(), key=lambda kv: -kv[1]))}


def main(argv=None) -> None:
  import argparse
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--asset", default="", help="asset folder (default: the committed one)")
  parser.add_argument("--clips", type=int, default=6, help="clips per class")
  parser.add_argument("--protocols", default=",".join(protocols()))
  parser.add_argument("--json", default="", help="also write the results here")
  args = parser.parse_args(argv)
  names = [p.strip() for p in args.protocols.split(",") if p.strip()]
  unknown = sorted(set(names) - set(protocols()))
  if unknown or args.clips < 1:
    raise SystemExit(f"--protocols {unknown}: known {list(protocols())}; --clips >= 1")
  asset = Asset.load(args.asset or None)
  results = {p: run_protocol(asset, p, args.clips) for p in names}
  print("| protocol | clips | candidates (chance, mean over clips) | likelihood top-1 | top-5 "
        "| greedy, strict | picture effect (nats) | most frequent greedy replies |")
  print("|---|---|---|---|---|---|---|---|")
  for p, r in results.items():
    common = ", ".join(f"{n} x {k!r}" for k, n in list(r["replies"].items())[:3])
    print(f"| {p} | {r['clips']} | {r['candidates']} ({100 * r['chance']:.1f} %) | "
          f"{100 * r['top1']:.1f} % | {100 * r['top5']:.1f} % | {100 * r['strict']:.1f} % | "
          f"{r['picture_effect']:.3f} | {common} |")
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
  main(sys.argv[1:])
