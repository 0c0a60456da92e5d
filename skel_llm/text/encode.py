"""Tokenising conversations into fixed-length arrays for the train step.

One sample becomes `input_ids int32[L]`, `input_mask int32[L]` (1 on real
tokens, right padding 0) and `loss_mask float32[L]` (1 on the answer tokens
and the closing `<|im_end|>`: the next-token loss of position t-1 predicting
token t counts when `loss_mask[t]` is 1). Prompt and answer are tokenised
separately, as InternVL's fine-tuning code masks by turn. A sample longer
than L raises: nothing is truncated silently.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from skel_llm.text import chat


class TextTokenizer:
  """A uniform view of a `tokenizers.Tokenizer` or a transformers tokenizer."""

  def __init__(self, tok: Any):
    self._tok = tok
    self._fast = hasattr(tok, "encode") and hasattr(tok, "token_to_id") and hasattr(
        tok, "get_vocab_size")

  @property
  def raw(self) -> Any:
    return self._tok

  def encode(self, text: str) -> list[int]:
    if self._fast:
      return list(self._tok.encode(text, add_special_tokens=False).ids)
    return list(self._tok.encode(text, add_special_tokens=False))

  def decode(self, ids) -> str:
    ids = [int(i) for i in ids]
    return self._tok.decode(ids, skip_special_tokens=False)

  def token_id(self, token: str) -> int:
    if self._fast:
      idx = self._tok.token_to_id(token)
    else:
      idx = self._tok.convert_tokens_to_ids(token)
      if idx == getattr(self._tok, "unk_token_id", None):
        idx = None
    if idx is None:
      raise KeyError(f"token {token!r} is not in the tokenizer's vocabulary")
    return int(idx)

  def has_token(self, token: str) -> bool:
    try:
      self.token_id(token)
      return True
    except KeyError:
      return False

  @property
  def vocab_size(self) -> int:
    if self._fast:
      return int(self._tok.get_vocab_size(with_added_tokens=True))
    return len(self._tok)


@dataclasses.dataclass(frozen=True)
class Encoded:
  input_ids: np.ndarray  # int32[L]
  input_mask: np.ndarray  # int32[L]
  loss_mask: np.ndarray  # float32[L]


class ConversationEncoder:
  """Chat template + tokenizer + fixed length -> `Encoded` samples."""

  def __init__(self, tokenizer: Any, template: chat.ChatTemplate, max_len: int,
               pad_token: str | None = None):
    self.tok = tokenizer if isinstance(tokenizer, TextTokenizer) else TextTokenizer(tokenizer)
    self.template = template
    self.max_len = int(max_len)
    for special in (chat.IM_START, chat.IM_END, chat.IMG_START, chat.IMG_END, chat.IMG_CONTEXT):
      if not self.tok.has_token(special):
        raise ValueError(f"tokenizer lacks the special token {special!r} that the "
                         f"internvl2_5 template needs")
    if pad_token is None:
      pad_token = "<|endoftext|>" if self.tok.has_token("<|endoftext|>") else chat.IM_END
    self.pad_id = self.tok.token_id(pad_token)
    self.im_end_id = self.tok.token_id(chat.IM_END)
    self.img_context_id = self.tok.token_id(chat.IMG_CONTEXT)
    self._cache: dict[str, list[int]] = {}

  def _encode_cached(self, text: str) -> list[int]:
    ids = self._cache.get(text)
    if ids is None:
      ids = self.tok.encode(text)
      if len(self._cache) < 4096:
        self._cache[text] = ids
    return ids

  def prompt_ids(self, user: str) -> list[int]:
    ids = self._encode_cached(self.template.prompt(user))
    n_img = ids.count(self.img_context_id)
    want = user.count(chat.IMAGE_PLACEHOLDER) * self.template.tokens_per_image
    if n_img != want:
      raise ValueError(f"prompt tokenised to {n_img} <IMG_CONTEXT> tokens, expected {want}: the "
                       f"tokenizer does not keep <IMG_CONTEXT> atomic")
    return ids

  def encode(self, user: str, answer: str | None) -> Encoded:
    """A training sample (answer given) or a generation prompt (answer None)."""
    ids = list(self.prompt_ids(user))
    n_prompt = len(ids)
    if answer is not None:
      ids += self.tok.encode(answer) + [self.im_end_id]
    if len(ids) > self.max_len:
      raise ValueError(f"sample is {len(ids)} tokens ({n_prompt} prompt) but max_len is "
                       f"{self.max_len}; raise config.data.max_len")
    length = len(ids)
    input_ids = np.full([self.max_len], self.pad_id, np.int32)
    input_ids[:length] = ids
    input_mask = np.zeros([self.max_len], np.int32)
    input_mask[:length] = 1
    loss_mask = np.zeros([self.max_len], np.float32)
    loss_mask[n_prompt:length] = 1.0
    return Encoded(input_ids, input_mask, loss_mask)

  def decode(self, ids) -> str:
    return self.tok.decode(ids)
