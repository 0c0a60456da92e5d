"""Synthetic class table and the compositional zero-shot split."""

import itertools

import pytest

from skel_llm import synthetic as S
from skel_llm.synthetic.classes import GRID_PARTS, GRID_VERBS


def test_class_names_are_distinct_and_many():
  assert len(S.CLASS_NAMES) >= 24
  assert len(set(S.CLASS_NAMES)) == len(S.CLASS_NAMES)
  assert S.CLASS_NAMES == tuple(c.name for c in S.CLASSES)


def test_names_are_compositions_of_verb_side_and_part():
  for c in S.CLASSES:
    assert c.verb in c.name
    if c.side in ("left", "right") and c.verb in GRID_VERBS + ("wave", "kick"):
      assert c.name == f"{c.verb} {c.side} {c.part}"
  # The grid is complete: every grid verb acts on both sides of every grid part.
  grid = {(c.verb, c.side, c.part) for c in S.CLASSES}
  for verb, side, part in itertools.product(GRID_VERBS, ("left", "right"), GRID_PARTS):
    assert (verb, side, part) in grid
  # The whole-body and two-person actions the issue names exist.
  for name in ("squat", "jump", "turn left", "bow", "handshake", "push", "raise left arm",
               "kick right leg", "wave right hand"):
    assert name in S.CLASS_NAMES
  assert {S.CLASS_NAMES[i] for i in S.TWO_PERSON_LABELS} == {"handshake", "push"}


def test_label_index_round_trips_and_rejects_unknowns():
  for i, name in enumerate(S.CLASS_NAMES):
    assert S.label_index(name) == i == S.label_index(i)
  with pytest.raises(ValueError, match="unknown synthetic action"):
    S.label_index("moonwalk")
  with pytest.raises(ValueError, match="out of range"):
    S.label_index(len(S.CLASS_NAMES))
  with pytest.raises(TypeError):
    S.label_index(1.5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("num_held_out", [1, 2, 4])
def test_split_holds_out_whole_verb_part_combinations(seed, num_held_out):
  seen, unseen = S.compositional_split(seed, num_held_out)
  assert set(seen).isdisjoint(unseen)
  assert sorted(seen + unseen) == list(range(len(S.CLASS_NAMES)))
  assert list(seen) == sorted(seen) and list(unseen) == sorted(unseen)
  held = {(S.CLASSES[i].verb, S.CLASSES[i].part) for i in unseen}
  assert len(held) == num_held_out and len(unseen) == 2 * num_held_out  # both sides of each
  seen_classes = [S.CLASSES[i] for i in seen]
  for i in unseen:
    c = S.CLASSES[i]
    # The verb and the (side, part) are each trained on, but never together.
    assert any(s.verb == c.verb for s in seen_classes)
    assert any((s.side, s.part) == (c.side, c.part) for s in seen_classes)
    assert not any((s.verb, s.part) == (c.verb, c.part) for s in seen_classes)
  # Parts alternate: neither arms nor legs lose more than half of their verbs.
  for part in GRID_PARTS:
    assert sum(p == part for _, p in held) <= (num_held_out + 1) // 2


def test_split_is_deterministic_and_varies_with_seed():
  assert S.compositional_split(3) == S.compositional_split(3)
  assert len({S.compositional_split(s)[1] for s in range(10)}) > 1
  with pytest.raises(ValueError, match="num_held_out"):
    S.compositional_split(0, 0)
