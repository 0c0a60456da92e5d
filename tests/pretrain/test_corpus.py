"""Pins skel_llm/pretrain/corpus.py: the pretraining corpus leaves the zero-shot classes out,
its answers are the generator's ground truth, and its samples are a function of the index."""

import numpy as np
import pytest

from skel_llm import synthetic
from skel_llm.pretrain import corpus
from skel_llm.render import sticks
from skel_llm.train import build, defaults


@pytest.fixture(scope="module")
def encoder():
  c = defaults.base("")
  c.data.max_len = 400
  return build.encoder(c, build.tokenizer(c))


def test_pretraining_classes_leave_every_unseen_class_out():
  unseen = {synthetic.CLASS_NAMES[i] for i in synthetic.compositional_split(0)[1]}
  assert set(corpus.EXCLUDED) == unseen
  assert set(defaults.DEMO_PRETRAINED_UNSEEN) == unseen
  assert not set(corpus.PRETRAIN_CLASSES) & unseen
  assert not set(defaults.DEMO_PRETRAINED_SEEN) & unseen
  # Zero-shot is compositional: each unseen class's verb, side and part occur among the
  # pretraining classes and among the stage runs' seen classes, never together.
  by_name = {c.name: c for c in synthetic.CLASSES}
  for pool in (corpus.PRETRAIN_CLASSES, defaults.DEMO_PRETRAINED_SEEN):
    verbs = {by_name[n].verb for n in pool}
    parts = {by_name[n].part for n in pool}
    pairs = {(by_name[n].verb, by_name[n].part) for n in pool}
    for name in unseen:
      c = by_name[name]
      assert c.verb in verbs and c.part in parts and (c.verb, c.part) not in pairs
  with pytest.raises(ValueError, match="unseen classes of the compositional protocol"):
    corpus.CorpusSpec(classes=("squat", "raise left leg"))


def test_no_sample_names_an_unseen_class_and_answers_are_in_the_loss(encoder):
  cp = corpus.Corpus(corpus.CorpusSpec(knobs=dict(defaults.DEMO_KNOBS)), encoder)
  tasks = set()
  for g in range(60):
    frames, user, answer, rec = cp.example(g)
    assert rec.metadata["label"] == corpus.PRETRAIN_CLASSES[g % len(corpus.PRETRAIN_CLASSES)]
    assert rec.metadata["seed"] == corpus.SEED_BASE + g
    for name in corpus.EXCLUDED:
      assert name not in user and name not in answer
    task = cp.spec.tasks[int(np.random.default_rng([cp.spec.task_seed, g]).integers(7))]
    tasks.add(task)
    name = rec.metadata["label"]
    if task == "choice":
      listed = user.split("Candidates: ")[1].split(".\n")[0].split("; ")
      assert name in listed and 4 <= len(listed) <= 8 and answer == f"Label: {name}"
      assert set(listed) <= set(corpus.PRETRAIN_CLASSES)
    if task == "yesno":
      asked = user.split("Is the action '")[1].split("'?")[0]
      assert answer == ("YES" if asked == name else "NO")
    if task == "reason":
      assert answer.endswith(f"Label: {name}") and answer == rec.metadata["description"]
    assert frames.shape == (6, 32, 32, 3)
    s = cp.sample(g)
    ids = s["input_ids"][s["loss_mask"] > 0]
    assert encoder.decode(ids).replace("<|im_end|>", "").strip() == answer.strip()
  assert tasks == set(corpus.TASKS)
  again = cp.sample(17)
  np.testing.assert_array_equal(again["pixel_values"], cp.sample(17)["pixel_values"])


@pytest.mark.parametrize("name, want", [("squat", "down"), ("bow", "down"),
                                        ("raise left arm", "up"), ("jump", "up")])
def test_up_down_answer_follows_the_joints(name, want):
  # Hand truth: a squat and a bow lower the head, raising an arm lifts the hand, a jump lifts
  # the arms and the body.
  for seed in range(3):
    rec = synthetic.generate_clip(name, seed)
    assert corpus.moving_direction(np.asarray(rec.positions)[:, 0]) == want


def test_part_and_side_answers_are_the_class_definition(encoder):
  rec = synthetic.generate_clip("kick left leg", 0)
  rng = np.random.default_rng(0)
  assert corpus.question_answer("part", rec, 6, rng)[1] == "Part: leg"
  assert corpus.question_answer("side", rec, 6, rng)[1] == "Side: left"
  assert corpus.question_answer("side", synthetic.generate_clip("bow", 0), 6, rng)[1] == \
      "Side: neither"
  with pytest.raises(ValueError, match="unknown"):
    corpus.question_answer("colour", rec, 6, rng)


def test_plain_fraction_draws_that_share_of_clips_plain_and_leaves_the_rest_unchanged():
  spec = corpus.CorpusSpec(plain_fraction=0.75)
  styles = [corpus.style(spec, (1, g)) for g in range(400)]
  plain = [bool(np.all(s.background == 0) and s.yaw_deg == 0) for s in styles]
  assert 0.68 < np.mean(plain) < 0.82, np.mean(plain)
  for g, (s, p) in enumerate(zip(styles, plain)):  # the others: the family's own draw
    want = sticks.draw_style((1, g))
    np.testing.assert_array_equal(s.bone_colours, sticks.plain_style(want).bone_colours if p
                                  else want.bone_colours)
  none = corpus.CorpusSpec()
  for g in range(20):
    np.testing.assert_array_equal(corpus.style(none, (1, g)).background,
                                  sticks.draw_style((1, g)).background)
  with pytest.raises(ValueError, match=r"plain_fraction 1.5: expected a share in \[0, 1\]"):
    corpus.CorpusSpec(plain_fraction=1.5)


def test_task_weights_set_the_odds_of_each_task_and_are_checked(encoder):
  spec = corpus.CorpusSpec(tasks=("choice", "part"), task_weights=(3.0, 1.0))
  cp = corpus.Corpus(spec, encoder)
  asked = [cp.example(g)[1] for g in range(120)]
  share = np.mean(["Which action is performed?" in u for u in asked])
  assert 0.62 < share < 0.88, share
  assert all(("Which action" in u) != ("Which body part" in u) for u in asked)
  with pytest.raises(ValueError, match=r"expected 2 weights >= 0, one per task"):
    corpus.CorpusSpec(tasks=("choice", "part"), task_weights=(1.0,))
  with pytest.raises(ValueError, match="not all 0"):
    corpus.CorpusSpec(tasks=("choice", "part"), task_weights=(0.0, 0.0))


def test_first_samples_ask_only_the_first_tasks_then_the_mix(encoder):
  spec = corpus.CorpusSpec(first_samples=30, first_tasks=("part",))
  cp = corpus.Corpus(spec, encoder)
  asked = [cp.example(g)[1] for g in range(60)]
  assert all("Which body part moves?" in u for u in asked[:30])
  assert sum("Which body part moves?" in u for u in asked[30:]) < 15  # 1 in 7 afterwards
  with pytest.raises(ValueError, match="give both"):
    corpus.CorpusSpec(first_samples=30)
  with pytest.raises(ValueError, match=r"\['dance'\]"):
    corpus.CorpusSpec(first_samples=3, first_tasks=("dance",))
