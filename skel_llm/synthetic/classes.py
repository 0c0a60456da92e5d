"""The synthetic action classes (index = label) and their compositional zero-shot split.

Most names are compositional, `<verb> <side> <part>`: four verbs (raise,
swing, stretch, bend) each act on both arms and both legs, so a split can hold
out whole verb/part combinations ("raise ... leg") while every verb and every
part still occurs in training. The rest are single-part actions (wave, kick,
punch), whole-body actions and two-person interactions.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from skel_llm.synthetic import interactions, motions


@dataclasses.dataclass(frozen=True)
class ActionClass:
  """One synthetic action.

  Attributes:
    name: the label text.
    verb: what is done ('raise', 'kick', 'squat', ...).
    side: 'left', 'right', 'both' or 'none'.
    part: body part that carries the motion ('arm', 'leg', 'hand', 'torso', 'body', ...).
    program: the motion program (`motions.*` for one person, `interactions.*` for two).
    persons: 1 or 2.
    base_length: fraction of the clip the motion fills at speed 1.
  """

  name: str
  verb: str
  side: str
  part: str
  program: Callable
  persons: int = 1
  base_length: float = 0.8


# Verbs that act on both arms and legs: the compositional grid.
GRID_VERBS = ("raise", "swing", "stretch", "bend")
GRID_PARTS = ("arm", "leg")
_GRID_PROGRAMS = {
    ("raise", "arm"): motions.raise_arm, ("raise", "leg"): motions.raise_leg,
    ("swing", "arm"): motions.swing_arm, ("swing", "leg"): motions.swing_leg,
    ("stretch", "arm"): motions.stretch_arm, ("stretch", "leg"): motions.stretch_leg,
    ("bend", "arm"): motions.bend_arm, ("bend", "leg"): motions.bend_leg,
}


def _build_classes() -> tuple[ActionClass, ...]:
  out = []
  for verb in GRID_VERBS:
    for part in GRID_PARTS:
      for side in ("left", "right"):
        out.append(ActionClass(f"{verb} {side} {part}", verb, side, part,
                               _GRID_PROGRAMS[verb, part]))
  for side in ("left", "right"):
    out.append(ActionClass(f"wave {side} hand", "wave", side, "hand", motions.wave_hand))
  for side in ("left", "right"):
    out.append(ActionClass(f"kick {side} leg", "kick", side, "leg", motions.kick_leg,
                           base_length=0.6))
  for side in ("left", "right"):
    out.append(ActionClass(f"punch with {side} hand", "punch", side, "hand", motions.punch_hand))
  out += [
      ActionClass("clap hands", "clap", "both", "hand", motions.clap_hands),
      ActionClass("squat", "squat", "both", "leg", motions.squat),
      ActionClass("jump", "jump", "both", "body", motions.jump, base_length=0.7),
      ActionClass("turn left", "turn", "left", "body", motions.turn),
      ActionClass("turn right", "turn", "right", "body", motions.turn),
      ActionClass("bow", "bow", "none", "torso", motions.bow),
      ActionClass("lean left", "lean", "left", "torso", motions.lean),
      ActionClass("lean right", "lean", "right", "torso", motions.lean),
      ActionClass("handshake", "handshake", "right", "hand", interactions.handshake, persons=2),
      ActionClass("push", "push", "both", "arm", interactions.push, persons=2, base_length=0.85),
      # Added after the first release: appended so earlier label indices stay valid.
      ActionClass("nod head", "nod", "none", "head", motions.nod_head),
      ActionClass("hop on left leg", "hop", "left", "leg", motions.hop, base_length=0.85),
      ActionClass("hop on right leg", "hop", "right", "leg", motions.hop, base_length=0.85),
      ActionClass("march in place", "march", "both", "leg", motions.march, base_length=0.9),
  ]
  return tuple(out)


CLASSES: tuple[ActionClass, ...] = _build_classes()
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
TWO_PERSON_LABELS: tuple[int, ...] = tuple(i for i, c in enumerate(CLASSES) if c.persons == 2)


def label_index(label: int | str) -> int:
  """The class index of a name or index; raises ValueError naming the known classes."""
  if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
    if not 0 <= int(label) < len(CLASSES):
      raise ValueError(f"synthetic label index {label} out of range [0, {len(CLASSES)})")
    return int(label)
  if isinstance(label, str):
    try:
      return CLASS_NAMES.index(label)
    except ValueError:
      raise ValueError(f"unknown synthetic action {label!r}; known: {list(CLASS_NAMES)}") from None
  raise TypeError(f"label must be an int or a class name, got {type(label).__name__}")


def compositional_split(seed: int = 0, num_held_out: int = 4) -> tuple[tuple[int, ...],
                                                                        tuple[int, ...]]:
  """(seen, unseen) label indices; unseen = whole verb/part combinations held out.

  For `num_held_out` of the grid verbs, one part (arm or leg, both sides) is
  held out; parts alternate so that each part is held out for at most
  ceil(num_held_out / 2) verbs. Every verb, every part and every side of an
  unseen class also occurs in a seen class, but the verb never with that part.
  Non-grid classes are always seen. Deterministic per seed.

  Args:
    seed: picks which verbs and which of their parts are held out.
    num_held_out: number of verb/part combinations held out, 1..len(GRID_VERBS).

  Returns:
    Two sorted tuples of label indices that are disjoint and cover every class.
  """
  if not 1 <= num_held_out <= len(GRID_VERBS):
    raise ValueError(f"num_held_out must be in [1, {len(GRID_VERBS)}], got {num_held_out}")
  rng = np.random.default_rng(seed)
  verbs = [GRID_VERBS[i] for i in rng.permutation(len(GRID_VERBS))[:num_held_out]]
  first = int(rng.integers(2))
  held = {(verb, GRID_PARTS[(first + i) % 2]) for i, verb in enumerate(verbs)}
  unseen = tuple(i for i, c in enumerate(CLASSES) if (c.verb, c.part) in held)
  seen = tuple(i for i in range(len(CLASSES)) if i not in unseen)
  return seen, unseen
