"""Caption metrics through the field's reference implementations (wrapped, never re-typed).

Protocol (stated in every result as `protocol`): raw captions (HumanML3D's caption text, not
its pre-tokenised `tokens` field; the generator's sentences for synthetic clips), each
hypothesis against all references of its clip, lower-cased and tokenised by pycocoevalcap's
PTB tokenizer (Stanford CoreNLP 3.4.1, Java), then corpus-level scores of pycocoevalcap 1.2:

| key | implementation |
|---|---|
| bleu1 ... bleu4 | `pycocoevalcap.bleu.Bleu(4)` (corpus BLEU, closest reference length) |
| meteor | `pycocoevalcap.meteor.Meteor` (METEOR 1.5 jar, Java) |
| rouge_l | `pycocoevalcap.rouge.Rouge` (ROUGE-L F, beta 1.2) |
| cider_d | `pycocoevalcap.cider.Cider`: coco-caption's CIDEr-D (clipped counts, Gaussian length penalty sigma 6, x10); the document frequencies come from the evaluated references, so it is not comparable across test sets of other sizes |
| bleu4_sacrebleu | `sacrebleu.corpus_bleu` on the same PTB-tokenised strings (`tokenize='none'`, no smoothing), /100: a second BLEU implementation beside pycocoevalcap's |
| bertscore_f1 | `bert_score.score` F1 (idf weights from the references; rescaled when a baseline file is given), only when a local model folder is named |

Java is needed for the tokenizer and METEOR (`.ci/run` installs it with apt when missing).
"""

from __future__ import annotations

import os
import shutil
from typing import Mapping, Sequence

PROTOCOL = ("raw captions, all references per clip, PTB-tokenised (pycocoevalcap 1.2), "
            "corpus-level BLEU-1..4 / METEOR 1.5 / ROUGE-L / CIDEr-D")


def _check_java() -> None:
  if shutil.which("java") is None:
    raise RuntimeError("caption metrics need Java for pycocoevalcap's PTB tokenizer and METEOR: "
                       "install it (apt-get install default-jre-headless; .ci/run does so)")


def _checked(hyps: Mapping, refs: Mapping) -> tuple[list, dict, dict]:
  keys = list(hyps)
  if not keys:
    raise ValueError("caption metrics need at least one hypothesis")
  if set(keys) != set(refs):
    missing = sorted(set(keys) - set(refs), key=str)[:5]
    extra = sorted(set(refs) - set(keys), key=str)[:5]
    raise ValueError(f"hypotheses and references name different clips (no references for "
                     f"{missing}, no hypothesis for {extra})")
  for k in keys:
    if not isinstance(hyps[k], str):
      raise ValueError(f"clip {k!r}: the hypothesis must be one string, got {type(hyps[k])}")
    if not refs[k] or any(not isinstance(r, str) or not r.strip() for r in refs[k]):
      raise ValueError(f"clip {k!r}: needs at least one non-empty reference caption, got "
                       f"{list(refs[k])!r}")
  return keys, {k: [hyps[k]] for k in keys}, {k: list(refs[k]) for k in keys}


def tokenize(captions: Mapping[object, Sequence[str]]) -> dict[object, list[str]]:
  """pycocoevalcap's PTB tokenizer (lower case, punctuation removed) on {clip: [caption]}."""
  _check_java()
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
  return PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})


def sacrebleu_bleu4(hyps: Mapping[object, str], refs: Mapping[object, Sequence[str]]) -> float:
  """Corpus BLEU-4 of sacrebleu in [0, 1] on already tokenised strings.

  sacrebleu takes reference streams of equal length; a clip with fewer references repeats its
  last one (a repeated reference changes neither the clipped counts nor the closest length).
  """
  import sacrebleu
  keys = list(hyps)
  width = max(len(refs[k]) for k in keys)
  streams = [[refs[k][min(i, len(refs[k]) - 1)] for k in keys] for i in range(width)]
  out = sacrebleu.corpus_bleu([hyps[k] for k in keys], streams, tokenize="none",
                              smooth_method="none", force=True)
  return float(out.score) / 100.0


def bertscore(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, model: str,
              num_layers: int, baseline: str = "", idf: bool = True) -> tuple[float, str]:
  """(F1, description) of `bert_score.score` with a local model folder."""
  if not os.path.isdir(model):
    raise FileNotFoundError(f"bertscore_model {model!r} is not a local model folder")
  if baseline and not os.path.isfile(baseline):
    raise FileNotFoundError(f"bertscore_baseline {baseline!r} does not exist")
  try:
    import bert_score
  except ImportError:
    raise ImportError("BERTScore needs bert-score and torch: pip install bert-score==0.3.13 "
                      "torch==2.13.0 (requirements-test.txt pins both)") from None
  _, _, f1 = bert_score.score(list(hyps), [list(r) for r in refs], model_type=model,
                              num_layers=int(num_layers), idf=idf,
                              rescale_with_baseline=bool(baseline),
                              baseline_path=baseline or None, lang="en", device="cpu")
  how = (f"bert_score {bert_score.__version__}, model {model}, layer {num_layers}, "
         f"idf {'on' if idf else 'off'}, "
         + (f"rescaled with {baseline}" if baseline else "not rescaled"))
  return float(f1.mean()), how


def score(hyps: Mapping[object, str], refs: Mapping[object, Sequence[str]], *,
          bertscore_model: str = "", bertscore_layers: int = 0, bertscore_baseline: str = "",
          bertscore_idf: bool = True) -> tuple[dict[str, float], dict]:
  """(scalars, notes): the metrics above over {clip: hypothesis} and {clip: [references]}.

  `notes` holds `protocol`, `bertscore` (how it was computed, or why it is absent) and
  `per_clip` ({metric: {clip: value}}).
  """
  keys, h, r = _checked(hyps, refs)
  from pycocoevalcap.bleu.bleu import Bleu
  from pycocoevalcap.cider.cider import Cider
  from pycocoevalcap.meteor.meteor import Meteor
  from pycocoevalcap.rouge.rouge import Rouge
  tok = tokenize({("h", k): v for k, v in h.items()} | {("r", k): v for k, v in r.items()})
  th = {k: tok[("h", k)] for k in keys}
  tr = {k: tok[("r", k)] for k in keys}
  scalars: dict[str, float] = {}
  per: dict[str, list] = {}
  bleu, bleu_each = Bleu(4).compute_score(tr, th, verbose=0)
  scalars.update({f"bleu{i + 1}": float(b) for i, b in enumerate(bleu)})
  per.update({f"bleu{i + 1}": list(b) for i, b in enumerate(bleu_each)})
  meteor = Meteor()  # a Java subprocess, ended when the object is collected
  value, per["meteor"] = meteor.compute_score(tr, th)
  scalars["meteor"] = float(value)
  del meteor
  value, per["rouge_l"] = Rouge().compute_score(tr, th)
  scalars["rouge_l"] = float(value)
  value, per["cider_d"] = Cider().compute_score(tr, th)
  scalars["cider_d"] = float(value)
  scalars["bleu4_sacrebleu"] = sacrebleu_bleu4({k: th[k][0] for k in keys}, tr)
  scalars["num_clips"] = float(len(keys))
  # Per clip, in the order of `hyps` (pycocoevalcap's per-image values, e.g. BLEU with its
  # clip-level brevity penalty).
  notes: dict = {"protocol": PROTOCOL,
                 "per_clip": {m: {str(k): float(v) for k, v in zip(keys, vals)}
                              for m, vals in per.items()}}
  if bertscore_model:
    if int(bertscore_layers) <= 0:
      raise ValueError("bertscore_layers must name the layer of the local BERTScore model "
                       "(bert_score's table: roberta-large 17, bert-base-uncased 9, ...)")
    scalars["bertscore_f1"], notes["bertscore"] = bertscore(
        [h[k][0] for k in keys], [r[k] for k in keys], model=bertscore_model,
        num_layers=bertscore_layers, baseline=bertscore_baseline, idf=bertscore_idf)
  else:
    notes["bertscore"] = ("absent: no local model folder given (bertscore_model); nothing can "
                          "be downloaded here, and no value is made up")
  return scalars, notes
