"""Skeleton-QA (ours): multiple-choice questions from the synthetic generator's ground truth.

The paper's Skeleton-QA is not released; this benchmark is generated, and documented in
docs/skeleton_qa.md. Every single-person class has a fixed list of question templates
(`TEMPLATES`), so clip i of a source always gets the same questions; the facts come from what
the generator drew for that clip (class side and part, repetition counts and which knee
marches first, read from its step-by-step description):

| type | templates |
|---|---|
| temporal | how many swings / nods / hops / claps / knee raises; which knee rises first; crouch or take-off first; knee lift or kick first |
| causal | why the person stands on one leg; why a hand moves away from the hip; why the head goes down (knees / waist / neck); why both feet leave the floor; why the hands meet |
| spatial | which arm / leg moves; which leg carries the hops; which way the person turns / leans; whether the head goes up or down (squat, bow); whether the foot moves to the front or the back |

Options are fixed per template (2 or 4); the correct option's position is balanced: for a
template with K options, the clips of one class take the positions of a seeded permutation
of 0..K-1 in turn (`answer_position`), so every K consecutive clips of a class hold every
position once. Each option carries a machine-readable tag (`leg:left`, `count:3`,
`dir:down`, ...) for checks that re-derive the answer from the joints (tests/synthetic/
test_qa.py does so from the joint positions alone). Two-person classes have no questions.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Sequence

import numpy as np

from skel_llm.synthetic.classes import CLASSES, label_index

TYPES = ("temporal", "causal", "spatial")
OTHER = {"left": "right", "right": "left"}
_COUNTS = ("once", "twice", "3 times", "4 times")
_MARCH_COUNTS = ("2 times", "4 times", "6 times", "8 times")


@dataclasses.dataclass(frozen=True)
class QAItem:
  """One multiple-choice question.

  Attributes:
    type: 'temporal', 'causal' or 'spatial'.
    template: the template's name (`TEMPLATES`).
    question: the question text.
    options: the choices, in the order shown (A, B, ...).
    answer: index of the correct option.
    tags: one tag per option (what the option claims, for independent checks).
  """

  type: str
  template: str
  question: str
  options: tuple[str, ...]
  answer: int
  tags: tuple[str, ...] = ()

  @property
  def answer_text(self) -> str:
    return self.options[self.answer]

  def to_json(self) -> dict:
    return {"type": self.type, "template": self.template, "question": self.question,
            "options": list(self.options), "answer": self.options[self.answer],
            "tags": list(self.tags)}


def make_item(qtype: str, template: str, question: str, options: Sequence[str], answer: str,
              tags: Sequence[str] = (), *, where: str = "") -> QAItem:
  """A checked `QAItem`: `answer` must be exactly one of `options` (raises naming `where`)."""
  where = f"{where}: " if where else ""
  if qtype not in TYPES:
    raise ValueError(f"{where}QA question type {qtype!r} is unknown; known: {TYPES}")
  options = tuple(str(o) for o in options)
  if len(options) < 2:
    raise ValueError(f"{where}QA question {question!r} needs at least two options, got "
                     f"{list(options)}")
  if len(set(options)) != len(options):
    raise ValueError(f"{where}QA question {question!r} repeats an option: {list(options)}")
  if answer not in options:
    raise ValueError(f"{where}QA question {question!r}: the answer {answer!r} is not one of its "
                     f"options {list(options)}")
  tags = tuple(tags)
  if tags and len(tags) != len(options):
    raise ValueError(f"{where}QA question {question!r}: {len(tags)} tags for {len(options)} "
                     f"options")
  return QAItem(qtype, template, question, options, options.index(answer), tags)


def item_from_json(d: dict, *, where: str = "") -> QAItem:
  """The inverse of `QAItem.to_json` (answer given as text), checked like `make_item`."""
  missing = [k for k in ("type", "question", "options", "answer") if k not in d]
  if missing:
    raise ValueError(f"{where}: QA entry lacks {missing}; expected type, question, options, "
                     f"answer")
  return make_item(d["type"], d.get("template", ""), d["question"], d["options"], d["answer"],
                   d.get("tags", ()), where=where)


def items_to_text(items: Sequence[QAItem]) -> str:
  """The questions of a clip as one JSON string (the `qa` feature of the TFDS build)."""
  return json.dumps([q.to_json() for q in items])


def items_from_text(text: str, *, where: str) -> tuple[QAItem, ...]:
  """The inverse of `items_to_text`; every entry checked (`item_from_json`)."""
  try:
    raw = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f"{where}: the qa field is not JSON ({e})") from None
  if not isinstance(raw, list):
    raise ValueError(f"{where}: the qa field must be a JSON list of questions")
  return tuple(item_from_json(d, where=f"{where} question {i}") for i, d in enumerate(raw))


def answer_position(seed: int, label: int, template: int, clip_of_class: int, k: int) -> int:
  """Where the answer goes among k options: balanced over every k consecutive clips of a class."""
  block, slot = divmod(int(clip_of_class), k)
  perm = np.random.default_rng([int(seed) % 2**63, int(label), int(template), block]).permutation(k)
  return int(perm[slot])


def _place(options_with_tags: list[tuple[str, str]], correct: int, position: int
           ) -> tuple[list[str], list[str], str]:
  """Moves option `correct` to `position`, the others keeping their order."""
  right = options_with_tags[correct]
  rest = [o for i, o in enumerate(options_with_tags) if i != correct]
  ordered = rest[:position] + [right] + rest[position:]
  return [o for o, _ in ordered], [t for _, t in ordered], right[0]


# ----------------------------------------------------------------------------- facts


_COUNT_PATTERNS = {
    "swing": r"like a pendulum (once|twice|\d+ times)|from the hip (once|twice|\d+ times)",
    "nod": r"dips (once|twice|\d+ times)",
    "hop": r"hops (once|twice|\d+ times)",
    "clap": r"chest (once|twice|\d+ times)",
    "march": r"(\d+) knee raises",
}


def _fact_count(verb: str, description: str, where: str) -> int:
  m = re.search(_COUNT_PATTERNS[verb], description)
  if m is None:
    raise ValueError(f"{where}: the description does not state how often ({verb}): "
                     f"{description[:200]!r}")
  word = next(g for g in m.groups() if g)
  return {"once": 1, "twice": 2}.get(word) or int(word.split()[0])


# ----------------------------------------------------------------------------- templates


def _cause_options(correct: str, distractors: Sequence[str]) -> list[tuple[str, str]]:
  return [(CAUSES[t], t) for t in (correct, *distractors)]


CAUSES = {
    "leg:left": "the person lifts the left leg", "leg:right": "the person lifts the right leg",
    "arm:left": "the person moves the left arm", "arm:right": "the person moves the right arm",
    "arms:both": "the person moves both arms together",
    "knees": "the person bends both knees and hips", "waist": "the person bends forward at the waist",
    "neck": "the person tips the head forward at the neck",
    "jump": "the person pushes off the floor with both legs",
}


def _t_count(c, facts, where):
  verb = c.verb
  n = _fact_count(verb, facts["description"], where)
  what = {"swing": f"does the {c.side} {c.part} swing forward",
          "nod": "does the head dip forward", "hop": "does the person hop",
          "clap": "do the hands clap together", "march": "does a knee come up"}[verb]
  choices = _MARCH_COUNTS if verb == "march" else _COUNTS
  word = f"{n} times" if verb == "march" else _COUNTS[n - 1]
  opts = [(o, f"count:{i + 1 if verb != 'march' else 2 * (i + 1)}") for i, o in enumerate(choices)]
  return "temporal", f"How many times {what}?", opts, choices.index(word)


def _t_march_first(c, facts, where):
  m = re.search(r"lifting the (left|right) knee first", facts["description"])
  if m is None:
    raise ValueError(f"{where}: the march description does not say which knee rises first")
  opts = [("the left knee", "first:left"), ("the right knee", "first:right")]
  return "temporal", "Which knee rises first?", opts, 0 if m.group(1) == "left" else 1


def _t_jump_order(c, facts, where):
  opts = [("the knees bend into a crouch", "first:crouch"),
          ("both feet leave the floor", "first:takeoff")]
  return "temporal", "Which happens first?", opts, 0


def _t_kick_order(c, facts, where):
  opts = [(f"the {c.side} knee lifts up in front of the body", "first:knee"),
          (f"the {c.side} lower leg snaps forward", "first:snap")]
  return "temporal", "Which happens first?", opts, 0


def _c_one_leg(c, facts, where):
  # The question names no side, so the text alone does not tell which leg is lifted.
  lifted = OTHER[c.side] if c.verb == "hop" else c.side
  stance = OTHER[lifted]
  # Side-free distractors too: the option set is the same for both sides.
  opts = _cause_options(f"leg:{lifted}", (f"leg:{stance}", "knees", "waist"))
  return "causal", "Why does the person stand on one leg only?", opts, 0


def _c_arm(c, facts, where):
  opts = _cause_options(f"arm:{c.side}", (f"arm:{OTHER[c.side]}", "knees", "waist"))
  return "causal", "Why does one hand move away from the hips?", opts, 0


def _c_head_down(c, facts, where):
  cause = {"squat": "knees", "bow": "waist", "nod": "neck"}[c.verb]
  others = [t for t in ("knees", "waist", "neck", "jump") if t != cause][:3]
  return "causal", "Why does the head move down?", _cause_options(cause, others), 0


def _c_feet_leave(c, facts, where):
  opts = _cause_options("jump", ("leg:left", "leg:right", "waist"))
  return "causal", "Why do both feet leave the floor?", opts, 0


def _c_hands_meet(c, facts, where):
  opts = _cause_options("arms:both", ("arm:left", "arm:right", "waist"))
  return "causal", "Why do the hands meet in front of the chest?", opts, 0


def _s_which(part):
  def template(c, facts, where):
    side = c.side
    opts = [(f"the left {part}", "side:left"), (f"the right {part}", "side:right")]
    return "spatial", f"Which {part} moves?", opts, 0 if side == "left" else 1
  return template


def _s_stance(c, facts, where):
  opts = [("the left leg", "side:left"), ("the right leg", "side:right")]
  return "spatial", "Which leg does the person hop on?", opts, 0 if c.side == "left" else 1


def _s_way(c, facts, where):
  verb = {"turn": "turn", "lean": "lean"}[c.verb]
  opts = [("to their left", "side:left"), ("to their right", "side:right")]
  return "spatial", f"Which way does the person {verb}?", opts, 0 if c.side == "left" else 1


def _s_updown(joint):
  def template(c, facts, where):
    name = {"head": "the head", "hand": f"the {c.side} hand", "foot": f"the {c.side} foot"}[joint]
    up = joint != "head"
    opts = [("up", "dir:up"), ("down", "dir:down")]
    return "spatial", f"Does {name} move up or down from where it starts?", opts, 0 if up else 1
  return template


def _s_frontback(c, facts, where):
  back = c.verb == "bend"
  opts = [("to the front of the body", "dir:front"), ("to the back of the body", "dir:back")]
  return ("spatial", f"Does the {c.side} foot move to the front or to the back of the body?",
          opts, 1 if back else 0)


def _templates_of(cls) -> tuple[tuple[str, object], ...]:
  """(name, template function) of a class, in a fixed order."""
  v, p = cls.verb, cls.part
  if cls.persons != 1:
    return ()
  if p == "arm" or (p == "hand" and v in ("wave", "punch")):
    # (No "does the hand go up or down": it goes up in every arm class, so the question text
    # would give the answer away.)
    out = [("which_arm", _s_which("arm")), ("arm_cause", _c_arm)]
    if v == "swing":
      out.append(("count", _t_count))
    return tuple(out)
  if p == "leg" and v in ("raise", "swing", "stretch", "bend", "kick"):
    out = [("which_leg", _s_which("leg")), ("one_leg_cause", _c_one_leg)]
    if v == "swing":
      out.append(("count", _t_count))
    if v == "kick":
      out.append(("kick_order", _t_kick_order))
    if v in ("raise", "kick", "bend"):
      out.append(("foot_frontback", _s_frontback))
    return tuple(out)
  if v in ("squat", "bow", "nod"):
    if v == "nod":  # the head drops ~1 cm in a nod: too little to ask up or down
      return (("head_down_cause", _c_head_down), ("count", _t_count))
    return (("head_down_cause", _c_head_down), ("head_updown", _s_updown("head")))
  if v == "jump":
    return (("feet_cause", _c_feet_leave), ("jump_order", _t_jump_order))
  if v == "hop":
    return (("one_leg_cause", _c_one_leg), ("count", _t_count), ("hop_leg", _s_stance))
  if v == "march":
    return (("march_first", _t_march_first), ("count", _t_count))
  if v == "clap":
    return (("hands_cause", _c_hands_meet), ("count", _t_count))
  if v in ("turn", "lean"):
    return (("which_way", _s_way),)
  return ()


TEMPLATES = {c.name: tuple(n for n, _ in _templates_of(c)) for c in CLASSES}
QA_LABELS = tuple(i for i, c in enumerate(CLASSES) if TEMPLATES[c.name])


def questions(label: int | str, description: str, *, clip_of_class: int, seed: int = 0,
              where: str = "") -> tuple[QAItem, ...]:
  """The questions of one clip of class `label` whose generator description is `description`.

  Args:
    label: class index or name.
    description: the generator's step-by-step description of this clip (its facts).
    clip_of_class: this clip's rank among the clips of its class in the source (balances the
      answer positions).
    seed: the benchmark's seed for the answer positions.
    where: names the clip in errors.
  """
  index = label_index(label)
  cls = CLASSES[index]
  facts = {"description": description}
  out = []
  for t, (name, fn) in enumerate(_templates_of(cls)):
    qtype, text, opts, correct = fn(cls, facts, where or cls.name)
    pos = answer_position(seed, index, t, clip_of_class, len(opts))
    options, tags, answer = _place(list(opts), correct, pos)
    out.append(make_item(qtype, name, text, options, answer, tags, where=where))
  return tuple(out)


def chance(items: Sequence[QAItem]) -> float:
  """Expected accuracy of a uniform guess over each question's options."""
  return float(np.mean([1.0 / len(q.options) for q in items])) if items else 0.0
