"""Pins skel_llm/data/pipeline.py: determinism, per-host slices, stage samples, confusables."""

import collections

import ml_collections
import numpy as np
import pytest

from skel_llm import models, synthetic
from skel_llm.data import pipeline, sources
from skel_llm.text import answers, chat, encode


@pytest.fixture(scope="module")
def enc():
  tok = encode.TextTokenizer(models.load_tokenizer(models.TINY_TOKENIZER_DIR))
  return encode.ConversationEncoder(
      tok, chat.get_template("internvl2_5", tokens_per_image=1, system=""), 400)


def _cfg(task, **kw):
  c = ml_collections.ConfigDict(dict(
      source="synthetic", task=task, eval_task="mqa", seed=3, num_train_clips=40,
      num_eval_clips=8, clip_frames=20, topology="ntu25", classes=(), max_frames=24,
      max_persons=2, max_len=400, confusable_file="", reason_with_candidates=False))
  c.update(kw)
  return c


def _pipe(enc, task, *, process_index=0, process_count=1, batch=4, training=True, rows=None,
          **kw):
  return pipeline.make_pipeline(_cfg(task, **kw), "train" if training else "eval", encoder=enc,
                                global_batch=batch, seed=3, training=training, num_frames=2,
                                process_index=process_index, process_count=process_count,
                                rows=rows)


def _text(enc, b, r):
  return enc.decode(b["input_ids"][r][b["loss_mask"][r] > 0])


def test_batches_are_a_function_of_the_step(enc):
  a, _ = _pipe(enc, "mqa")
  b, _ = _pipe(enc, "mqa")
  for step in (0, 7, 23):  # 23 is in epoch 2: a new permutation
    x, y = a.batch(step), b.batch(step)
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  # A resumed iterator reads what the uninterrupted one read.
  straight = [s_b for s_b in a.iterate(0, 6, prefetch=2)]
  resumed = list(b.iterate(3, 3, prefetch=0))
  for (s1, b1), (s2, b2) in zip(straight[3:], resumed):
    assert s1 == s2
    np.testing.assert_array_equal(b1["input_ids"], b2["input_ids"])
  # Each epoch visits every clip exactly once.
  labels = np.concatenate([a.batch(s)["label"] for s in range(10)])
  assert sorted(collections.Counter(labels.tolist()).values()) == sorted(
      collections.Counter([i % len(synthetic.CLASS_NAMES) for i in range(40)]).values())


def test_host_slices_tile_the_global_batch(enc):
  whole, _ = _pipe(enc, "mqa", batch=4)
  parts = [_pipe(enc, "mqa", batch=4, process_index=i, process_count=2)[0] for i in range(2)]
  for step in (0, 5):
    g = whole.batch(step)
    joined = {k: np.concatenate([p.batch(step)[k] for p in parts]) for k in g}
    for k in g:
      np.testing.assert_array_equal(g[k], joined[k])
  with pytest.raises(ValueError, match="not divisible by the 3 hosts"):
    _pipe(enc, "mqa", batch=4, process_index=0, process_count=3)


def test_explicit_rows_pick_those_slots_of_the_global_batch(enc):
  # A host whose devices hold slots 1 and 3 (a mesh that interleaves hosts) reads just those.
  whole, _ = _pipe(enc, "mqa", batch=4)
  part, _ = _pipe(enc, "mqa", batch=4, rows=[1, 3])
  for step in (0, 7):
    g, b = whole.batch(step), part.batch(step)
    for k in g:
      np.testing.assert_array_equal(b[k], g[k][[1, 3]])
  for bad in ([4], [1, 1], []):
    with pytest.raises(ValueError, match="must be distinct slots of the global batch of 4"):
      _pipe(enc, "mqa", batch=4, rows=bad)


def test_positions_are_padded_not_cut(enc):
  p, src = _pipe(enc, "mqa")
  b = p.batch(0)
  assert b["positions"].shape == (4, 24, 2, 25, 3)
  assert (b["num_frames"] == 20).all()
  assert not b["positions"][:, 20:].any()
  clip = src[p._index(0)]
  np.testing.assert_array_equal(b["positions"][0, :20, :clip.positions.shape[1]], clip.positions)
  short, _ = _pipe(enc, "mqa", max_frames=10)
  with pytest.raises(ValueError, match="raise it"):
    short.batch(0)


def test_mqa_lists_every_candidate_in_a_shuffled_order_and_answers_the_truth(enc):
  p, src = _pipe(enc, "mqa")
  orders = set()
  for step in range(3):
    b = p.batch(step)
    for r in range(4):
      prompt = enc.decode(b["input_ids"][r][(b["loss_mask"][r] == 0) & (b["input_mask"][r] > 0)])
      listed = prompt.split("Candidates: ")[1].split(".\n")[0].split("; ")
      assert sorted(listed) == sorted(synthetic.CLASS_NAMES)
      orders.add(tuple(listed))
      assert _text(enc, b, r) == f"Label: {src.class_names[b['label'][r]]}<|im_end|>"
  assert len(orders) == 12
  # Evaluation: fixed order, no answer.
  e, _ = _pipe(enc, "mqa", training=False)
  assert e.batch(0)["loss_mask"].sum() == 0


def test_yes_no_is_balanced_and_negatives_are_confusable(enc):
  p, src = _pipe(enc, "yesno", num_train_clips=200, batch=8)
  conf = pipeline.confusable_by_names(src.class_names)
  yes = 0
  total = 0
  for step in range(25):
    b = p.batch(step)
    for r in range(8):
      prompt = enc.decode(b["input_ids"][r][(b["loss_mask"][r] == 0) & (b["input_mask"][r] > 0)])
      asked = prompt.split("Is the action '")[1].split("'?")[0]
      truth = src.class_names[b["label"][r]]
      reply = _text(enc, b, r)
      if answers.parse_yes_no(reply):
        assert asked == truth
        yes += 1
      else:
        assert src.class_names.index(asked) in conf[b["label"][r]]
      total += 1
  assert 0.4 < yes / total < 0.6, yes / total


def test_reason_targets_are_the_generator_descriptions(enc):
  p, src = _pipe(enc, "reason", max_len=400)
  b = p.batch(1)
  for r in range(4):
    clip = src[p._index(4 + r)]
    assert _text(enc, b, r) == clip.rationale + "<|im_end|>"
    assert answers.parse_label(clip.rationale) == src.class_names[b["label"][r]]


def test_confusable_file_of_the_authors_reads_against_ntu_names(shared_data, tmp_path):
  path = shared_data / "draction_reference" / "ntu60_similar_actions.json"
  import json
  names = list(json.load(open(path)).keys())
  table = pipeline.load_confusable(str(path), names)
  assert len(table) == 60 and all(len(v) == 5 for v in table.values())
  assert names[table[names.index("drink water")][0]] == "eat food"
  with pytest.raises(ValueError, match="is not one of the 59 class names"):
    pipeline.load_confusable(str(path), names[1:])


def test_unknown_source_and_task_are_named():
  with pytest.raises(ValueError, match="config.data.source 'ucf'"):
    sources.make_source(_cfg("mqa", source="ucf"), "train")
  with pytest.raises(ValueError, match="config.data.classes"):
    sources.make_source(_cfg("mqa", classes=("fly",)), "train")


def test_eval_classes_make_the_evaluation_split_zero_shot():
  seen, unseen = ("squat", "jump", "bow"), ("raise left leg", "swing right arm")
  train = sources.make_source(_cfg("mqa", classes=seen, eval_classes=unseen), "train")
  ev = sources.make_source(_cfg("mqa", classes=seen, eval_classes=unseen), "eval")
  names = train.class_names
  assert [names[i] for i in train.candidate_ids] == list(seen)
  assert [names[i] for i in ev.candidate_ids] == list(unseen)
  assert {names[ev[i].label] for i in range(len(ev))} == set(unseen)
  # Without eval_classes the evaluation split holds other seeds of the training classes.
  same = sources.make_source(_cfg("mqa", classes=seen), "eval")
  assert same.candidate_ids == train.candidate_ids
  with pytest.raises(ValueError, match="config.data.eval_classes"):
    sources.make_source(_cfg("mqa", classes=seen, eval_classes=("fly",)), "eval")
