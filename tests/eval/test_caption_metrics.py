"""Pins skel_llm/eval/caption_metrics.py: the values are pycocoevalcap's and sacrebleu's own on
the same strings; identical captions score 1 and disjoint ones 0; bad input is named."""

import shutil

import pytest

from skel_llm.eval import caption_metrics

pytestmark = pytest.mark.skipif(shutil.which("java") is None,
                                reason="pycocoevalcap's tokenizer and METEOR need Java "
                                       "(.ci/run installs it)")

# HumanML3D-like raw captions: several references per clip, punctuation and case left in;
# clip "same" repeats its reference, clip "far" shares no word with its references.
HYPS = {
    "000021": "a person raises the left arm above the head, then lowers it.",
    "000137": "The person squats down and stands back up.",
    "004412": "someone walks forward slowly",
    "same": "a man kicks his right foot forward twice.",
    "far": "zebras gallop across savannah grass",
}
REFS = {
    "000021": ["A person raises their left arm over the head and lowers it.",
               "a man lifts his left arm up high", "the person raises the left arm."],
    "000137": ["the person squats down and stands back up", "a person does a squat."],
    "004412": ["a person jumps in place", "someone hops twice", "a man jumps up and down",
               "the person jumps"],
    "same": ["A man kicks his right foot forward twice."],
    "far": ["person squats down", "someone waves hand"],
}


@pytest.fixture(scope="module")
def ours():
  return caption_metrics.score(HYPS, REFS)


def _direct(hyps, refs):
  """pycocoevalcap's and sacrebleu's own calls, as their READMEs show them."""
  import sacrebleu
  from pycocoevalcap.bleu.bleu import Bleu
  from pycocoevalcap.cider.cider import Cider
  from pycocoevalcap.meteor.meteor import Meteor
  from pycocoevalcap.rouge.rouge import Rouge
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
  both = PTBTokenizer().tokenize({**{("r", k): [{"caption": c} for c in v] for k, v in refs.items()},
                                  **{("h", k): [{"caption": hyps[k]}] for k in refs}})
  gts = {k: both[("r", k)] for k in refs}
  res = {k: both[("h", k)] for k in refs}
  out, each = {}, {}
  bleu, bleu_each = Bleu(4).compute_score(gts, res)
  out.update({f"bleu{i + 1}": b for i, b in enumerate(bleu)})
  each.update({f"bleu{i + 1}": b for i, b in enumerate(bleu_each)})
  out["meteor"], each["meteor"] = Meteor().compute_score(gts, res)
  out["rouge_l"], each["rouge_l"] = Rouge().compute_score(gts, res)
  out["cider_d"], each["cider_d"] = Cider().compute_score(gts, res)
  keys = list(refs)
  # sacrebleu with every clip's references as parallel streams (1 to 4 references here: the
  # shorter lists repeat their last reference, which changes no clipped count).
  width = max(len(gts[k]) for k in keys)
  streams = [[gts[k][min(i, len(gts[k]) - 1)] for k in keys] for i in range(width)]
  out["bleu4_sacrebleu"] = sacrebleu.corpus_bleu([res[k][0] for k in keys], streams,
                                                 tokenize="none", smooth_method="none").score / 100
  return out, {m: dict(zip(keys, v)) for m, v in each.items()}


def test_values_are_the_reference_implementations(ours):
  scalars, notes = ours
  direct, each = _direct(HYPS, REFS)
  for key, value in direct.items():
    assert scalars[key] == pytest.approx(value, abs=1e-12), key
  for metric, table in each.items():
    for clip, value in table.items():
      assert notes["per_clip"][metric][clip] == pytest.approx(value, abs=1e-12), (metric, clip)
  # Two BLEU implementations agree on the same tokens.
  assert scalars["bleu4_sacrebleu"] == pytest.approx(scalars["bleu4"], abs=1e-6)
  assert 0.0 < scalars["bleu4"] < 1.0 and scalars["num_clips"] == 5
  assert "all references" in notes["protocol"] and "PTB" in notes["protocol"]
  assert "bertscore_f1" not in scalars and notes["bertscore"].startswith("absent")


def test_identical_and_disjoint_captions(ours):
  per = ours[1]["per_clip"]
  for key in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "meteor"):
    assert per[key]["same"] == pytest.approx(1.0, abs=1e-6), key
    assert per[key]["far"] == pytest.approx(0.0, abs=1e-9), key
  assert per["cider_d"]["far"] == 0.0
  # sacrebleu on one identical / one disjoint pair (no Java: the strings are already tokens).
  assert caption_metrics.sacrebleu_bleu4({0: "a man kicks his foot"},
                                         {0: ["a man kicks his foot"]}) == pytest.approx(1.0)
  assert caption_metrics.sacrebleu_bleu4({0: "zebras gallop"}, {0: ["person squats"]}) == 0.0


def test_bad_input_is_named():
  with pytest.raises(ValueError, match=r"no references for \['x'\]"):
    caption_metrics.score({"x": "a"}, {"y": ["a"]})
  with pytest.raises(ValueError, match="clip 'x': needs at least one non-empty reference"):
    caption_metrics.score({"x": "a"}, {"x": ["  "]})
  with pytest.raises(FileNotFoundError, match="not a local model folder"):
    caption_metrics.bertscore(["a"], [["a"]], model="/nonexistent/bert", num_layers=2)
