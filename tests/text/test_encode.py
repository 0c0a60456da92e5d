"""Pins skel_llm/text/encode.py with the committed tiny BPE tokenizer (a real tokenizer)."""

import numpy as np
import pytest

from skel_llm import models
from skel_llm.text import chat, encode, prompts


@pytest.fixture(scope="module")
def enc():
  tok = encode.TextTokenizer(models.load_tokenizer(models.TINY_TOKENIZER_DIR))
  return encode.ConversationEncoder(
      tok, chat.get_template("internvl2_5", tokens_per_image=4, system=chat.SHORT_SYSTEM), 200)


def test_answer_tokens_are_exactly_the_loss_mask(enc):
  e = enc.encode(prompts.mqa_question(3, ["squat", "jump"]), "Label: jump")
  n = int(e.input_mask.sum())
  assert e.input_ids.shape == (200,) and e.input_ids.dtype == np.int32
  assert (e.input_mask[:n] == 1).all() and (e.input_mask[n:] == 0).all()
  assert (e.input_ids[n:] == enc.pad_id).all()
  answer_ids = e.input_ids[e.loss_mask > 0]
  assert enc.decode(answer_ids) == "Label: jump<|im_end|>"
  assert e.loss_mask[n - 1] == 1 and e.loss_mask[n] == 0
  # The prompt decodes back to the template text, image placeholders included.
  prompt = enc.decode(e.input_ids[:n][e.loss_mask[:n] == 0])
  assert prompt == enc.template.prompt(prompts.mqa_question(3, ["squat", "jump"]))
  assert int((e.input_ids == enc.img_context_id).sum()) == 3 * 4


def test_prompt_only_has_no_loss(enc):
  e = enc.encode(prompts.mqa_question(3, ["squat"]), None)
  assert e.loss_mask.sum() == 0
  assert enc.decode(e.input_ids[:int(e.input_mask.sum())]).endswith("<|im_start|>assistant\n")


def test_too_long_raises_instead_of_truncating(enc):
  with pytest.raises(ValueError, match="raise config.data.max_len"):
    enc.encode(prompts.mqa_question(3, ["squat"] * 80), "Label: squat")
