"""The `internvl2_5` chat template and image placeholders.

InternVL3 talks in Qwen turns: `<|im_start|>{role}\n{content}<|im_end|>\n`.
An image in the prompt is `<img>` + N `<IMG_CONTEXT>` tokens + `</img>`; the
model later replaces the N context embeddings by the frame's visual tokens
(N = 256 for 448^2 InternViT frames after pixel shuffle). Frames are labelled
"Frame1: <image>" ... one per line (docs/method.md §3).
"""

from __future__ import annotations

import dataclasses

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
IMG_START = "<img>"
IMG_END = "</img>"
IMG_CONTEXT = "<IMG_CONTEXT>"
IMAGE_PLACEHOLDER = "<image>"

# The system message InternVL2.5/3 checkpoints were tuned with (their `internvl2_5` template).
INTERNVL_SYSTEM = ("你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的"
                   "多模态大语言模型。")
# A short English system message for small tokenizers (the demo's tiny BPE).
SHORT_SYSTEM = "You are a helpful assistant that understands human motion."


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
  """How a conversation becomes text.

  Attributes:
    system: the system message ('' drops the system turn).
    tokens_per_image: number of `<IMG_CONTEXT>` tokens per frame.
  """

  system: str = INTERNVL_SYSTEM
  tokens_per_image: int = 256

  def image_block(self) -> str:
    return IMG_START + IMG_CONTEXT * self.tokens_per_image + IMG_END

  def prompt(self, user: str) -> str:
    """System + user turn + the opening of the assistant turn; `<image>` expanded."""
    if user.count(IMAGE_PLACEHOLDER) == 0:
      raise ValueError("the user message has no <image> placeholder; frames would be ignored")
    user = user.replace(IMAGE_PLACEHOLDER, self.image_block())
    text = ""
    if self.system:
      text += f"{IM_START}system\n{self.system}{IM_END}\n"
    text += f"{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n"
    return text

  def answer(self, answer: str) -> str:
    """The assistant's reply as trained: the text and the end-of-turn token."""
    return answer + IM_END


def get_template(name: str, *, tokens_per_image: int, system: str | None = None) -> ChatTemplate:
  """Templates by name; only `internvl2_5` exists (InternVL2.5 and InternVL3 share it)."""
  if name != "internvl2_5":
    raise ValueError(f"unknown chat template {name!r}; known: ['internvl2_5']")
  return ChatTemplate(system=INTERNVL_SYSTEM if system is None else system,
                      tokens_per_image=tokens_per_image)
