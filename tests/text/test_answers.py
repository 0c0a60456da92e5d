"""Pins skel_llm/text/answers.py: reading labels and YES/NO out of replies."""

from skel_llm.text import answers

NAMES = ["put on", "put on a shoe", "wave left hand", "wave right hand", "squat"]


def test_last_label_line_wins_over_mentions_in_the_rationale():
  text = ("1. The arm rises like in wave right hand.\nLabel: wave left hand.\n<|im_end|>"
          "Label: squat")
  assert answers.parse_label(text) == "wave left hand"
  assert answers.match_label(text, NAMES) == 2


def test_longest_contained_name_is_chosen():
  assert answers.match_label("Label: Put On A Shoe", NAMES) == 1
  assert answers.match_label("the person will put on a shoe now", NAMES) == 1
  assert answers.match_label("Label: put on", NAMES) == 0


def test_no_label_and_no_name_is_a_miss():
  assert answers.parse_label("The person jumps.") is None
  assert answers.match_label("The person jumps.", NAMES) is None
  assert answers.match_label("Label:", NAMES) is None


def test_yes_no():
  assert answers.parse_yes_no("YES<|im_end|>") is True
  assert answers.parse_yes_no(" no.") is False
  assert answers.parse_yes_no("maybe") is None
  assert answers.parse_yes_no("") is None
