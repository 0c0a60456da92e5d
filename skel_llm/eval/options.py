"""Every evaluator type's options and defaults (no heavy imports: config files use it).

`evaluator(kind, **options)` gives a complete `config.evals` entry: every option is spelled
out, so each one can be overridden from the command line
(`--config.evals.heldout.num_clips=96`), where ml_collections accepts only existing keys.
"""

from __future__ import annotations

from typing import Any

import ml_collections

# config.data keys an evaluator may override for its split; "" (or -1 for eval_seed_offset)
# keeps the run's value. `class_split` is not a config.data key: "seen" evaluates a zero-shot
# run (`config.data.eval_classes` set) on held-out clips of its training classes
# (`config.data.classes`) instead of its unseen ones, a validation split to choose on
# (`eval.data.data_config`).
DATA_KEYS = ("source", "tfds_name", "eval_split", "protocol", "topology", "placement",
             "data_dir", "eval_seed_offset", "crossformat", "class_split")
CLASS_SPLITS = ("", "seen")
KEEP = ("", -1)

COMMON = dict(type="", every_steps=0)
WITH_DATA = dict(num_clips=48, batch_size=8, prompt="",
                 data=dict({k: "" for k in DATA_KEYS}, eval_seed_offset=-1))
TYPE_OPTIONS = {
    # max_new_tokens 0: the longest answer of the training task + 8 (`Context.answer_budget`).
    "recognition": dict(method="decode", max_new_tokens=0, repetition_penalty=1.0, topk=5),
    "yesno": dict(max_new_tokens=4),
    # bertscore_model: a local model folder (else BERTScore is absent, with the reason);
    # bertscore_layers: its layer (bert_score's table); bertscore_baseline: a rescale file.
    "captioning": dict(max_new_tokens=0, bertscore_model="", bertscore_layers=0,
                       bertscore_baseline="", bertscore_idf=True),
    # text_baseline_clips: training clips whose questions give the text-only baseline.
    "qa": dict(max_new_tokens=24, text_baseline_clips=512),
    # of: the recognition evaluator to corrupt; num_clips 0: as many clips as it has.
    "robustness": dict(of="", dropout=(0.1, 0.2, 0.3, 0.5), noise_cm=(2.0, 5.0, 10.0), seeds=3,
                       num_clips=0),
}
WITH_DATA_TYPES = ("recognition", "yesno", "captioning", "qa")


def options(kind: str) -> dict[str, Any]:
  """Every option of an evaluator type with its default."""
  if kind not in TYPE_OPTIONS:
    raise ValueError(f"evaluator type {kind!r} is unknown; known: {sorted(TYPE_OPTIONS)}")
  out = dict(COMMON, type=kind, **TYPE_OPTIONS[kind])
  if kind in WITH_DATA_TYPES:
    out.update(WITH_DATA, data=dict(WITH_DATA["data"]))
  return out


def evaluator(kind: str, **kw) -> dict[str, Any]:
  """A complete evaluator entry: the type's defaults with `kw` on top (unknown keys raise)."""
  out = options(kind)
  unknown = sorted(set(kw) - set(out))
  if unknown:
    raise ValueError(f"evaluator {kind!r}: unknown option(s) {unknown}; known: {sorted(out)}")
  data = dict(out.get("data", {}))
  data.update(kw.pop("data", {}) or {})
  out.update(kw)
  if "data" in out:
    out["data"] = data
  return out


def with_defaults(name: str, ev: Any) -> ml_collections.ConfigDict:
  """The evaluator's options over its type's defaults; unknown options raise, naming them."""
  ev = dict(ev)
  kind = ev.get("type", "")
  if kind not in TYPE_OPTIONS:
    raise ValueError(f"config.evals.{name}.type {kind!r} is unknown; known: "
                     f"{sorted(TYPE_OPTIONS)}")
  known = options(kind)
  unknown = sorted(set(ev) - set(known))
  if unknown:
    raise ValueError(f"config.evals.{name}: unknown option(s) {unknown} for type {kind!r}; "
                     f"known: {sorted(known)}")
  merged = dict(known, **ev)
  if "data" in known:
    data = dict(merged["data"] or {})
    bad = sorted(set(data) - set(DATA_KEYS))
    if bad:
      raise ValueError(f"config.evals.{name}.data: unknown key(s) {bad}; known: "
                       f"{list(DATA_KEYS)}")
    merged["data"] = dict(known["data"], **data)
  return ml_collections.ConfigDict(merged)
