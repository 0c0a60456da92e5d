"""Text: prompts for every training stage, the chat template, answer parsing.

- `chat`: the `internvl2_5` template (`ChatTemplate`, `get_template`), image
  placeholders (`<img>` + N `<IMG_CONTEXT>` + `</img>` per frame).
- `prompts`: `mqa_question/answer` (stages 1, 4, evaluation),
  `yesno_question/answer` (stage 2), `reason_question/answer` (stage 3),
  `caption_question/answer` (captioning), `qa_question/answer` (Skeleton-QA).
- `answers`: `parse_label`, `match_label`, `parse_yes_no`, `parse_choice`, `normalise`.
- `encode`: `ConversationEncoder(tokenizer, template, max_len).encode(user,
  answer) -> Encoded(input_ids int32[L], input_mask int32[L], loss_mask
  float32[L])`; `TextTokenizer` wraps `tokenizers` or transformers tokenizers.
"""

from skel_llm.text import answers, chat, encode, prompts

__all__ = ["answers", "chat", "encode", "prompts"]
