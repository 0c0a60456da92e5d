"""Pins skel_llm/text/prompts.py and chat.py: the stage prompts inside the internvl2_5 template."""

import pytest

from skel_llm.text import answers, chat, prompts


def test_template_turns_and_image_blocks():
  t = chat.get_template("internvl2_5", tokens_per_image=3, system="sys")
  text = t.prompt(prompts.mqa_question(2, ["a b", "c"]))
  block = "<img>" + "<IMG_CONTEXT>" * 3 + "</img>"
  assert text.startswith("<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nFrame1: " + block
                         + "\nFrame2: " + block + "\n")
  assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
  assert text.count("<IMG_CONTEXT>") == 6
  assert t.answer("YES") == "YES<|im_end|>"
  with pytest.raises(ValueError, match="unknown chat template"):
    chat.get_template("llava", tokens_per_image=3)
  with pytest.raises(ValueError, match="no <image>"):
    t.prompt("text only")


def test_stage_questions_and_answers():
  q = prompts.mqa_question(12, ["squat", "jump"])
  assert q.count("<image>") == 12 and "squat; jump" in q
  assert answers.parse_label(prompts.mqa_answer("jump")) == "jump"
  assert "'jump'" in prompts.yesno_question(12, "jump")
  assert prompts.yesno_answer(True) == "YES" and prompts.yesno_answer(False) == "NO"
  assert "squat" not in prompts.reason_question(12, None)
  assert "squat; jump" in prompts.reason_question(12, ["squat", "jump"])
  assert prompts.reason_answer(" 1. Knees bend.\nLabel: squat ") == "1. Knees bend.\nLabel: squat"
  with pytest.raises(ValueError, match="no 'Label: ...' line"):
    prompts.reason_answer("1. Knees bend.")
