"""Pins skel_llm/eval/metrics.py and yesno.summarise on hand-made replies and counts."""

import numpy as np
import pytest

from skel_llm.eval import metrics, yesno

CANDS = ["drink water", "eat meal/snack", "brushing teeth", "put on a shoe", "put on"]


def test_authors_rule_is_a_substring_and_counts_replies_naming_several_labels():
  reply = "Label: drink water or eat meal/snack"
  assert metrics.authors_hit(reply, "drink water")
  assert metrics.authors_hit(reply, "eat meal/snack")
  assert metrics.authors_hit("I think DRINK WATER.", "drink water")  # case-insensitive
  assert not metrics.authors_hit("Label: drinking", "drink water")
  assert metrics.authors_hit("Label: drink water or eat", "drink water")
  # Our strict rule reads one label: a reply naming two, or a name with extra words, is no
  # prediction at all.
  assert metrics.strict_prediction(reply, CANDS) is None
  assert metrics.strict_prediction("Label: drink water or eat", CANDS) is None


def test_strict_rule_reads_the_last_label_line_as_exactly_one_name():
  assert metrics.strict_prediction("Label: drink water", CANDS) == 0
  assert metrics.strict_prediction("the arm rises\nLabel: brushing teeth.", CANDS) == 2
  # 'put on a shoe' contains 'put on': each is read as itself, never as the other.
  assert metrics.strict_prediction("Label: put on a shoe", CANDS) == 3
  assert metrics.strict_prediction("Label: 'Put on'.", CANDS) == 4
  assert metrics.strict_prediction("drink water", CANDS) == 0  # no Label line: whole reply
  # A rationale that mentions another action before its Label line.
  assert metrics.strict_prediction("not like drink water\nLabel: eat meal/snack", CANDS) == 1
  assert metrics.strict_prediction("LabelLabelLabel", CANDS) is None
  assert not metrics.has_label_line("the hand rises to the mouth")
  assert metrics.has_label_line("x\nLabel: drink water")


def test_summary_counts_confusion_per_class_and_persons():
  s = metrics.Summary(["a", "b", "c"], two_person={2})
  for truth, pred in [(0, 0), (0, 1), (1, 1), (2, None), (2, 2), (2, 2)]:
    s.add(truth, pred)
  assert s.count == 6 and s.accuracy() == pytest.approx(4 / 6)
  assert s.per_class() == {"a": 0.5, "b": 1.0, "c": pytest.approx(2 / 3)}
  assert s.by_persons() == {"1p": pytest.approx(2 / 3), "2p": pytest.approx(2 / 3)}
  conf = s.confusion_json()
  assert conf["columns"] == ["a", "b", "c", "unparsed"]
  assert conf["counts"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 2, 1]]
  # Without a class table the breakdown uses each clip's own person count; `hit` overrides.
  t = metrics.Summary(["a", "b"])
  t.add(0, None, persons=2, hit=True)
  t.add(1, 1, persons=1, hit=False)
  assert t.by_persons() == {"1p": 0.0, "2p": 1.0} and t.accuracy() == 0.5
  with pytest.raises(ValueError, match="at least one candidate"):
    metrics.Summary([])


def test_topk_and_mean_std():
  scores = np.array([[0.1, 0.5, 0.4], [0.9, 0.0, 0.8], [0.2, 0.2, 0.1]])
  truth = np.array([2, 2, 1])
  np.testing.assert_array_equal(metrics.topk_hits(scores, truth, 1), [False, False, False])
  np.testing.assert_array_equal(metrics.topk_hits(scores, truth, 2), [True, True, True])
  mean, std = metrics.mean_std([0.5, 0.7, 0.6])
  assert mean == pytest.approx(0.6) and std == pytest.approx(np.std([0.5, 0.7, 0.6]))


def test_yesno_summary_separates_positive_and_negative_questions():
  always_yes = [{"expected": "YES", "reply": "YES"}, {"expected": "NO", "reply": "Yes."},
                {"expected": "YES", "reply": "yes"}, {"expected": "NO", "reply": "YES"}]
  s = yesno.summarise(always_yes)
  assert (s["positive"], s["negative"], s["balanced"], s["unparsed"]) == (1.0, 0.0, 0.5, 0.0)
  mixed = [{"expected": "YES", "reply": "NO"}, {"expected": "NO", "reply": "NO."},
           {"expected": "YES", "reply": "maybe"}, {"expected": "NO", "reply": "no"}]
  s = yesno.summarise(mixed)
  assert (s["positive"], s["negative"], s["unparsed"]) == (0.0, 1.0, 0.25)
  assert s["num_clips"] == 2 and s["chance"] == 0.5
