"""Questions and target answers for the four training stages (docs/method.md §4).

| task | stages | question | answer |
|---|---|---|---|
| `mqa` | 1 warm-up, 4 refinement | frames + candidate labels, pick one | `Label: <name>` |
| `yesno` | 2 Disc-FT | frames + "is the action '<X>'?" | `YES` / `NO` |
| `reason` | 3 CR-Distill | frames (+ candidates), describe then decide | rationale ending `Label: <name>` |
| `caption` | captioning | frames, describe the motion | one reference caption |
| `qa` | question answering | frames + a question + lettered options | `Answer: (<letter>) <option>` |

The MQA answer carries the same `Label:` prefix as the rationale so that one
parser (`skel_llm.text.answers`) reads every stage's output. Wording is ours.
"""

from __future__ import annotations

from typing import Sequence

from skel_llm.text.chat import IMAGE_PLACEHOLDER

TASKS = ("mqa", "yesno", "reason", "caption", "qa")
LETTERS = "ABCDEFGH"

_INTRO = ("The {n} frames above are renderings of a 3D human skeleton sequence, in time order. "
          "Colours encode depth and motion.")


def _frames(num_frames: int) -> str:
  return "".join(f"Frame{i + 1}: {IMAGE_PLACEHOLDER}\n" for i in range(num_frames))


def _candidates(candidates: Sequence[str]) -> str:
  if not candidates:
    raise ValueError("a multiple-choice question needs at least one candidate label")
  return "; ".join(candidates)


def mqa_question(num_frames: int, candidates: Sequence[str]) -> str:
  """Multiple-choice recognition: the user message for stages 1 and 4 and for evaluation."""
  return (_frames(num_frames) + _INTRO.format(n=num_frames)
          + f"\nWhich action is performed? Candidates: {_candidates(candidates)}."
          + "\nReply with exactly one candidate as 'Label: <action>'.")


def mqa_answer(label: str) -> str:
  return f"Label: {label}"


def yesno_question(num_frames: int, asked_label: str) -> str:
  """Discriminative fine-tuning (stage 2): one yes/no question about one label."""
  return (_frames(num_frames) + _INTRO.format(n=num_frames)
          + f"\nIs the action '{asked_label}'? Answer YES or NO.")


def yesno_answer(is_true: bool) -> str:
  return "YES" if is_true else "NO"


def reason_question(num_frames: int, candidates: Sequence[str] | None = None) -> str:
  """Causal-reasoning distillation (stage 3): the student prompt (it never sees the label)."""
  text = (_frames(num_frames) + _INTRO.format(n=num_frames)
          + "\nDescribe how the body moves, part by part, infer which action causes this motion,")
  if candidates:
    text += f" choose among: {_candidates(candidates)},"
  return text + " and end with a line 'Label: <action>'."


def reason_answer(rationale: str) -> str:
  """The teacher's rationale as the target; rationales without a `Label:` line are rejected."""
  from skel_llm.text.answers import parse_label  # local: answers imports nothing from here
  if parse_label(rationale) is None:
    raise ValueError(f"rationale has no 'Label: ...' line (such rationales are dropped upstream): "
                     f"{rationale[:120]!r}")
  return rationale.strip()


def caption_question(num_frames: int) -> str:
  """Motion captioning: the user message asks for a description of the motion."""
  return (_frames(num_frames) + _INTRO.format(n=num_frames)
          + "\nDescribe the motion of the person in one or two sentences.")


def caption_answer(caption: str) -> str:
  caption = " ".join(caption.split())
  if not caption:
    raise ValueError("a caption target must not be empty")
  return caption


def qa_question(num_frames: int, question: str, options: Sequence[str]) -> str:
  """Skeleton question answering: a question and lettered options (A), (B), ..."""
  if not 2 <= len(options) <= len(LETTERS):
    raise ValueError(f"a QA question needs 2..{len(LETTERS)} options, got {len(options)}")
  lines = "\n".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))
  return (_frames(num_frames) + _INTRO.format(n=num_frames) + f"\n{question}\n{lines}"
          + "\nReply with one option as 'Answer: (<letter>) <option>'.")


def open_question(num_frames: int, question: str) -> str:
  """A free question about the clip, without options (`skel_llm.predict --task=qa` with no
  `--options`). No stage trains this format: the reply is whatever the model makes of it."""
  if not question.strip():
    raise ValueError("an open question must not be empty")
  return _frames(num_frames) + _INTRO.format(n=num_frames) + f"\n{question.strip()}"


def qa_answer(options: Sequence[str], answer: int) -> str:
  if not 0 <= answer < len(options):
    raise ValueError(f"QA answer index {answer} outside the {len(options)} options")
  return f"Answer: ({LETTERS[answer]}) {options[answer]}"
