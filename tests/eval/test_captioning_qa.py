"""Pins skel_llm/eval/captioning.py and qa.py on a random-weight smoke model (no training):
what each evaluator asks, against the clips' own references and questions, and how it counts."""

import pathlib
import shutil

import jax
import ml_collections
import numpy as np
import pytest

from skel_llm.eval import options, qa as qa_eval
from skel_llm.text import answers, prompts
from skel_llm.train import defaults, trainer, validate

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_run():
  c = defaults.load_config(REPO / "configs" / "distill.py", "smoke,multitask")
  c.data.classes = ("squat", "kick right leg", "raise left arm", "jump")
  c.evals = ml_collections.ConfigDict(dict(
      caps=options.evaluator("captioning", num_clips=4, batch_size=4, max_new_tokens=6),
      qa=options.evaluator("qa", num_clips=5, batch_size=4, max_new_tokens=10,
                           text_baseline_clips=16)))
  validate.check_config(c)
  run = trainer.Run(c, devices=jax.devices()[:1])
  return run, run.init_state()


def test_qa_asks_every_question_of_every_clip_and_counts_per_type(smoke_run):
  run, state = smoke_run
  ev = run.evaluators().items["qa"][1]
  scalars, details = ev.run(state)
  recs = details["records"]
  want = [(g, q) for g in range(5) for q in range(len(ev.data.clip(g).qa))]
  assert [(r["index"], r["slot"]) for r in recs] == want  # 5 clips over 2 batches, all slots
  for r in recs:
    item = ev.data.clip(r["index"]).qa[r["slot"]]
    assert (r["question"], r["options"], r["answer"]) == (item.question, list(item.options),
                                                          item.answer_text)
    said = answers.parse_choice(r["reply"], item.options)
    assert r["hit"] == (said == item.answer)
  for t in qa_eval.QA_TYPES:
    sel = [r for r in recs if r["type"] == t]
    assert scalars[f"{t}_questions"] == len(sel)
    assert scalars[f"{t}_accuracy"] == pytest.approx(np.mean([r["hit"] for r in sel]))
    assert scalars[f"{t}_chance"] == pytest.approx(np.mean([1 / len(r["options"]) for r in sel]))
  assert scalars["num_clips"] == 5
  # The text-only baseline: the training split's most frequent answer to the same question.
  from skel_llm.data import sources
  src = sources.make_source(ev.data.data_cfg, "train")
  votes = qa_eval.text_answers([q for i in range(16) for q in src[i].qa])
  want = np.mean([votes.get((r["question"], tuple(sorted(r["options"])))) == r["answer"]
                  for r in recs])
  assert scalars["text_only"] == pytest.approx(want)


def test_qa_summary_by_hand():
  recs = [dict(index=0, type="temporal", hit=True, picked="a", chance=0.5),
          dict(index=0, type="causal", hit=False, picked=None, chance=0.25),
          dict(index=1, type="causal", hit=True, picked="b", chance=0.25)]
  s = qa_eval.summarise(recs)
  assert "text_only" not in s
  assert s["accuracy"] == pytest.approx(2 / 3) and s["causal_accuracy"] == 0.5
  assert s["temporal_chance"] == 0.5 and s["chance"] == pytest.approx(1 / 3)
  assert s["unparsed"] == pytest.approx(1 / 3) and s["num_clips"] == 2
  assert "spatial_accuracy" not in s


def test_a_parsed_letter_or_option_text_picks_the_option():
  opts = ["the left arm", "the right arm"]
  assert answers.parse_choice(prompts.qa_answer(opts, 1), opts) == 1
  assert answers.parse_choice("Answer: the left arm", opts) == 0
  assert answers.parse_choice("Answer: (C) both", opts) is None  # no option C
  assert answers.parse_choice("I am not sure", opts) is None


@pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap needs Java")
def test_captioning_scores_the_replies_against_all_references(smoke_run):
  run, state = smoke_run
  ev = run.evaluators().items["caps"][1]
  scalars, details = ev.run(state)
  recs = details["records"]
  assert [r["index"] for r in recs] == [0, 1, 2, 3]
  for r in recs:
    clip = ev.data.clip(r["index"])
    assert r["references"] == list(clip.captions) and len(r["references"]) == 2
  assert set(details["per_clip"]["bleu4"]) == {"0", "1", "2", "3"}
  assert scalars["num_clips"] == 4 and 0 <= scalars["bleu1"] <= 1
  assert details["protocol"].startswith("raw captions") and "bertscore_f1" not in scalars
  assert details["bertscore"].startswith("absent")


def test_evaluator_mistakes_are_named():
  from skel_llm.eval import captioning
  bad = options.with_defaults("c", options.evaluator("captioning",
                                                     bertscore_model="/models/roberta"))
  with pytest.raises(ValueError, match=r"config.evals.c.bertscore_layers must name"):
    captioning.Captioning("c", bad, ctx=None)
  bad = options.with_defaults("q", options.evaluator("qa", prompt="mqa"))
  with pytest.raises(ValueError, match=r"config.evals.q.prompt 'mqa': the qa evaluator"):
    qa_eval.QA("q", bad, ctx=None)
