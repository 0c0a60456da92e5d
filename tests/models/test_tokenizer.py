"""Pins skel_llm/models/tokenizer.py: the committed tiny BPE and folder loading."""

import json

import pytest

from skel_llm.models import tokenizer as tokenizer_lib


@pytest.fixture(scope="module")
def tok():
  return tokenizer_lib.load_tokenizer(tokenizer_lib.TINY_TOKENIZER_DIR)


def test_special_tokens_are_single_ids(tok):
  ids = tok.convert_tokens_to_ids(list(tokenizer_lib.SPECIAL_TOKENS))
  assert ids == [0, 1, 2, 3, 4, 5]
  text = "<img><IMG_CONTEXT><IMG_CONTEXT></img><|im_end|>"
  assert tok(text)["input_ids"] == [3, 5, 5, 4, 2]
  assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
  vocab, img = tokenizer_lib.tiny_tokenizer_ids()
  assert (vocab, img) == (len(tok), 5)
  assert 1000 <= vocab <= 2000


def test_byte_level_round_trip_of_unseen_text(tok):
  text = "Label: drink water\nÜbung 42 — 人 (sniff/smell)?"
  ids = tok(text)["input_ids"]
  assert tok.decode(ids) == text


def test_labels_compress_to_few_tokens(tok):
  # Trained on the project's own labels: every synthetic label is one token per word.
  for name in tokenizer_lib.SYNTHETIC_LABELS:
    assert len(tok(name)["input_ids"]) == len(name.split()), name


def test_chat_template_is_internvl2_5(tok):
  messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
              {"role": "assistant", "content": "A"}, {"role": "user", "content": "Q2"}]
  got = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
  assert got == ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
                 "<|im_start|>assistant\nA<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
                 "<|im_start|>assistant\n")


def test_rebuild_reproduces_committed_asset(shared_data, tmp_path):
  with open(shared_data / "draction_reference" / "ntu120_similar_actions.json") as f:
    names = list(json.load(f))
  out = tokenizer_lib.build_tiny_tokenizer(names, tmp_path)
  for name in ("tokenizer.json", "tokenizer_config.json"):
    assert (out / name).read_bytes() == (tokenizer_lib.TINY_TOKENIZER_DIR / name).read_bytes()


def test_missing_tokenizer_files_are_named(tmp_path):
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(FileNotFoundError, match=r"tokenizer\.json, vocab\.json \+ merges\.txt.*"
                                              r"found \['config\.json'\]"):
    tokenizer_lib.load_tokenizer(tmp_path)
