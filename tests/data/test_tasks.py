"""Pins the caption and qa tasks and task mixtures of skel_llm/data/pipeline.py (plus the
clips' captions and questions from skel_llm/data/sources.py)."""

import collections

import ml_collections
import numpy as np
import pytest

from skel_llm import models
from skel_llm.data import pipeline, sources
from skel_llm.skeleton import load
from skel_llm.synthetic import captions as captions_lib
from skel_llm.text import answers, chat, encode

CLASSES = ("squat", "raise left arm", "kick right leg", "handshake")


@pytest.fixture(scope="module")
def enc():
  tok = encode.TextTokenizer(models.load_tokenizer(models.TINY_TOKENIZER_DIR))
  return encode.ConversationEncoder(
      tok, chat.get_template("internvl2_5", tokens_per_image=1, system=""), 400)


def _pipe(enc, task, classes=CLASSES, training=True, n=16):
  c = ml_collections.ConfigDict(dict(
      source="synthetic", task=task, eval_task="qa", seed=5, num_train_clips=n,
      num_eval_clips=8, clip_frames=20, topology="ntu25", classes=classes, max_frames=24,
      max_persons=2, max_len=400, confusable_file="", reason_with_candidates=False))
  return pipeline.make_pipeline(c, "train" if training else "eval", encoder=enc,
                                global_batch=4, seed=5, training=training, num_frames=2)


def _answer(enc, s):
  return enc.decode(s["input_ids"][s["loss_mask"] > 0]).replace(chat.IM_END, "")


def _prompt(enc, s):
  return enc.decode(s["input_ids"][(s["input_mask"] > 0) & (s["loss_mask"] == 0)])


def _task_of(prompt):
  if "Describe the motion" in prompt:
    return "caption"
  if "Answer: (<letter>)" in prompt:
    return "qa"
  return "reason"


def test_task_mixtures_parse_and_name_mistakes():
  assert pipeline.parse_task_mix("reason") == [("reason", 1.0)]
  assert pipeline.parse_task_mix("reason:2, caption:1,qa:1") == [
      ("reason", 0.5), ("caption", 0.25), ("qa", 0.25)]
  for spec, msg in [("reason:0.5,story:0.5", "task 'story' is unknown"),
                    ("qa:x", "weight 'x' of 'qa' is not a number"),
                    ("qa:0", "weight of 'qa' must be positive"),
                    ("qa:1,qa:2", "names 'qa' twice")]:
    with pytest.raises(ValueError, match=msg):
      pipeline.parse_task_mix(spec)


def test_mixture_draws_tasks_by_weight_deterministically(enc):
  pipe, source = _pipe(enc, "reason:0.5,caption:0.25,qa:0.25", n=40)
  again, _ = _pipe(enc, "reason:0.5,caption:0.25,qa:0.25", n=40)
  seen = collections.Counter()
  for g in range(240):
    s = pipe.sample(g)
    np.testing.assert_array_equal(s["input_ids"], again.sample(g)["input_ids"])
    task = _task_of(_prompt(enc, s))
    seen[task] += 1
    clip = source[pipe._index(g)]
    if task == "qa":
      # The target is one of the clip's own questions, its letter and text.
      picked = [q for q in clip.qa if q.question in _prompt(enc, s)]
      assert picked, _prompt(enc, s)
      assert answers.parse_choice(_answer(enc, s), picked[0].options) == picked[0].answer
    elif task == "caption":
      assert _answer(enc, s) in clip.captions
  # handshake clips (a quarter) have no questions: their qa draws go to the other tasks, so
  # qa gets 0.25 * 3/4 of the samples.
  assert abs(seen["reason"] / 240 - 0.5) < 0.12, seen
  assert abs(seen["caption"] / 240 - 0.25) < 0.1, seen
  assert abs(seen["qa"] / 240 - 0.1875) < 0.1, seen


def test_caption_target_is_one_reference_drawn_per_epoch(enc):
  pipe, source = _pipe(enc, "caption", classes=("squat",), n=2)
  clip = source[0]
  assert clip.captions == captions_lib.captions(clip.rationale)
  assert "Label:" not in clip.captions[0] and not clip.captions[0][0].isdigit()
  targets = {_answer(enc, pipe.sample(g)) for g in range(0, 40, 2) if pipe._index(g) == 0}
  assert targets == set(clip.captions)  # both references, over the epochs


def test_qa_task_answers_are_balanced_letters(enc):
  pipe, source = _pipe(enc, "qa", classes=("raise left arm", "squat"), n=32, training=False)
  letters = collections.Counter()
  for i in range(len(source)):
    clip = source[i]
    for q in clip.qa:
      letters[(len(q.options), q.answer)] += 1
  for k in (2, 4):
    counts = [letters[(k, a)] for a in range(k)]
    assert max(counts) - min(counts) <= 2, (k, counts)


def test_caption_less_humanml3d_clip_is_named(enc, shared_data):
  path = shared_data / "real/humanml3d/new_joints/012314.npy"
  rec = load(path)  # no texts/ folder beside new_joints/ in the sample: no captions
  assert rec.metadata["captions"] is None
  clip = sources.clip_from_record(rec)
  builder = pipeline.ConversationBuilder("caption", [], [], 2)
  with pytest.raises(ValueError, match=r"clip '.*012314.npy' has no caption: the caption task "
                                       r"needs reference captions \(HumanML3D texts/<id>.txt"):
    builder(clip, np.random.default_rng(0))
  with_caps = sources.clip_from_record(rec.__class__(**{**rec.__dict__, "metadata": {
      **rec.metadata, "captions": [{"caption": "a person walks in a circle."}]}}))
  assert builder(with_caps, None)[1] == "a person walks in a circle."


def test_qa_task_on_a_clip_without_questions_is_named(enc):
  pipe, _ = _pipe(enc, "qa", classes=("handshake",), n=2)
  with pytest.raises(ValueError, match=r"clip 'synthetic/train/\d' has no QA questions"):
    pipe.sample(0)
