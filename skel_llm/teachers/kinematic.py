"""The kinematic teacher: a causal chain read off the joint trajectories themselves.

Offline, free and deterministic. For each person it measures, per body part (the
topology's `parts`), how far the part travels from the clip's starting pose, when it
starts moving (onset), when it is furthest away (peak), in which direction (in the
person's own frame: up/down, forward/back, their left/right) and whether it comes back;
then it orders the moving parts by onset (the first mover "leads", the others "follow")
and, with two persons, relates them (distance between them at the start and the end,
the closest approach of a hand to the other body). The text ends with `Label: <true name>`.

Input positions are in metres, +y up (what the training pipeline feeds the renderer:
`skel_llm.render.camera.place(positions, 'auto', topology)` for raw files, the sources'
placement (`config.data.placement`) for clips).

Displacement of part k at frame t: mean over the part's joints of |x_t - x_0| after a
centred 5-frame moving average (sensor jitter would otherwise count as motion).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from skel_llm.skeleton import topology as topology_lib

PROMPT_VERSION = "kinematic-v1"

# A part "moves" when it travels at least this far (metres) and at least this share of the
# clip's largest part displacement; weaker motions are reported as still.
MIN_MOTION_M = 0.05
MIN_SHARE = 0.35
# Onset: the first frame where the part has covered this share of its peak displacement.
ONSET_SHARE = 0.25
# Returned: the final displacement is below this share of the peak.
RETURN_SHARE = 0.4
SMOOTH = 5
# A root that travels this far (metres) makes the whole body the first mover; the limbs are
# then measured relative to the root.
TRAVEL_M = 0.15

_PART_WORDS = {
    "head": "head", "torso": "trunk", "left_arm": "left arm", "right_arm": "right arm",
    "left_hand": "left hand", "right_hand": "right hand", "left_leg": "left leg",
    "right_leg": "right leg", "left_foot": "left foot", "right_foot": "right foot"}


def part_words(part: str) -> str:
  return _PART_WORDS[part]


@dataclasses.dataclass(frozen=True)
class PartMotion:
  """How one body part of one person moves over the clip."""

  part: str
  peak_m: float  # largest displacement from the starting pose
  onset: int  # frame index where it has covered ONSET_SHARE of the peak
  peak: int  # frame index of the peak
  direction: tuple[float, float, float]  # unit (up, forward, right) of the peak displacement
  returns: bool  # ends near where it started


def _smooth(x: np.ndarray, k: int = SMOOTH) -> np.ndarray:
  """Centred moving average over axis 0 with edge padding (same length)."""
  if x.shape[0] < 3 or k <= 1:
    return x
  k = min(k, x.shape[0] if x.shape[0] % 2 else x.shape[0] - 1)
  pad = k // 2
  xp = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)], 0)
  c = np.cumsum(np.concatenate([np.zeros_like(xp[:1]), xp], 0), axis=0)
  return (c[k:] - c[:-k]) / k


def _body_frame(pose: np.ndarray, topo: topology_lib.Topology) -> np.ndarray:
  """float64[3, 3] rows (up, forward, right) of a person's body at one frame [J, 3].

  Right = the mean of the right-minus-left shoulder/hip vectors, made horizontal; forward =
  up x right (right-handed axes, +y up): it points out of the chest.
  """
  up = np.array([0.0, 1.0, 0.0])
  pairs = [(a, b) for a, b in topo.left_right]
  right = np.zeros(3)
  for left, rgt in pairs:
    right += pose[rgt] - pose[left]
  right[1] = 0.0
  n = np.linalg.norm(right)
  if n < 1e-6:  # degenerate (a 2D side view): fall back to the camera's x axis
    right = np.array([1.0, 0.0, 0.0])
  else:
    right /= n
  return np.stack([up, np.cross(up, right), right])


def present_persons(positions: np.ndarray) -> list[int]:
  """Persons with any non-zero joint."""
  return [p for p in range(positions.shape[1]) if np.any(positions[:, p] != 0)]


def root_travel(positions: np.ndarray, topo: topology_lib.Topology, person: int) -> float:
  """Largest distance (metres) of the person's smoothed root from its first position."""
  root = _smooth(np.asarray(positions[:, person, topo.root], np.float64))
  return float(np.linalg.norm(root - root[0], axis=-1).max())


def part_displacement(positions: np.ndarray, topo: topology_lib.Topology, person: int,
                      smooth: bool = True, relative: bool = False) -> dict[str, np.ndarray]:
  """part -> float64[T] mean distance of its joints from their first-frame positions.

  `relative` measures the joints in a frame that travels with the root (limb motion of a
  person who walks, jumps or falls), else in the camera's fixed frame.
  """
  x = np.asarray(positions[:, person], np.float64)
  if smooth:
    x = _smooth(x)
  if relative:
    x = x - x[:, topo.root:topo.root + 1]
  out = {}
  for part, joints in topo.parts.items():
    d = np.linalg.norm(x[:, list(joints)] - x[:1, list(joints)], axis=-1)
    out[part] = d.mean(axis=1)
  return out


def analyse_person(positions: np.ndarray, topo: topology_lib.Topology, person: int,
                   relative: bool = False) -> list[PartMotion]:
  """Every part's motion, largest first (`relative`: to the travelling root)."""
  x = _smooth(np.asarray(positions[:, person], np.float64))
  frame = _body_frame(x[0], topo)
  disp = part_displacement(positions, topo, person, relative=relative)
  if relative:
    x = x - x[:, topo.root:topo.root + 1]
  out = []
  for part, joints in topo.parts.items():
    d = disp[part]
    peak = int(np.argmax(d))
    peak_m = float(d[peak])
    onset = int(np.argmax(d >= ONSET_SHARE * peak_m)) if peak_m > 0 else 0
    vec = (x[peak, list(joints)] - x[0, list(joints)]).mean(axis=0)
    direction = tuple(float(v) for v in _unit(frame @ vec))
    out.append(PartMotion(part, peak_m, onset, peak, direction,
                          returns=bool(d[-1] < RETURN_SHARE * peak_m)))
  return sorted(out, key=lambda m: (-m.peak_m, m.part))


def _unit(v: np.ndarray) -> np.ndarray:
  n = np.linalg.norm(v)
  return v / n if n > 1e-9 else v


def _direction_words(direction: Sequence[float]) -> str:
  up, fwd, right = direction
  words = []
  for value, pos, neg in ((up, "up", "down"), (fwd, "forward", "backward"),
                          (right, "to the person's right", "to the person's left")):
    if abs(value) >= 0.45:
      words.append(pos if value > 0 else neg)
  return " and ".join(words) if words else "in a small loop"


def _when(frame: int, length: int) -> str:
  return f"{round(100 * frame / max(length - 1, 1))}%"


def _cm(metres: float) -> str:
  return f"{round(100 * metres)} cm"


def moving_parts(motions: Sequence[PartMotion], clip_max: float) -> list[PartMotion]:
  """The parts that count as moving (see MIN_MOTION_M, MIN_SHARE), largest first."""
  return [m for m in motions if m.peak_m >= max(MIN_MOTION_M, MIN_SHARE * clip_max)]


def _join(words: Sequence[str]) -> str:
  if len(words) <= 1:
    return "".join(words)
  return ", ".join(words[:-1]) + " and " + words[-1]


def rationale(positions: np.ndarray, topology: str, label: str, *, max_parts: int = 3) -> str:
  """The causal chain for one clip, float32[T, P, J, 3] in metres (+y up), ending with the label.

  Raises:
    ValueError: no person in the clip, fewer than 2 frames, or a joint count that is not
      the topology's.
  """
  topo = topology_lib.get(topology)
  pos = np.asarray(positions, np.float64)
  if pos.ndim != 4 or pos.shape[-1] != 3:
    raise ValueError(f"kinematic teacher: positions must be [T, P, J, 3], got {pos.shape}")
  if pos.shape[2] != topo.num_joints:
    raise ValueError(f"kinematic teacher: clip has {pos.shape[2]} joints but topology "
                     f"{topology} has {topo.num_joints}")
  if pos.shape[0] < 2:
    raise ValueError(f"kinematic teacher: clip has {pos.shape[0]} frame(s); need at least 2")
  persons = present_persons(pos)
  if not persons:
    raise ValueError("kinematic teacher: every joint of every person is zero")
  t = pos.shape[0]
  travel = {p: root_travel(pos, topo, p) for p in persons}
  travels = {p: travel[p] >= TRAVEL_M for p in persons}
  per = {p: analyse_person(pos, topo, p, relative=travels[p]) for p in persons}
  clip_max = max(m.peak_m for ms in per.values() for m in ms)
  two = len(persons) > 1
  # The more active person first.
  order = sorted(persons, key=lambda p: -per[p][0].peak_m)
  lines = []
  summary = []
  for p in order:
    who = f"person {persons.index(p) + 1}" if two else "the person"
    moving = moving_parts(per[p], clip_max)[:max_parts - int(travels[p])]
    verb = "travels as a whole and moves" if travels[p] else "moves"
    if moving:
      summary.append(f"{who} {verb} mostly the {_join([part_words(m.part) for m in moving])}")
    else:
      summary.append(f"{who} {'travels with the limbs' if travels[p] else 'is'} almost still")
  lines.append(("Summary: " if not two else "Summary: two persons; ") + "; ".join(summary) + ".")
  step = 1
  for p in order:
    who = f"Person {persons.index(p) + 1}'s" if two else "The"
    # A travelling body takes one of the lines.
    moving = moving_parts(per[p], clip_max)[:max_parts - int(travels[p])]
    chain = sorted(moving, key=lambda m: (m.onset, -m.peak_m))
    if travels[p]:
      root = _smooth(pos[:, p, topo.root])
      dist = np.linalg.norm(root - root[0], axis=-1)
      far = int(np.argmax(dist))
      onset = int(np.argmax(dist >= ONSET_SHARE * dist[far]))
      frame = _body_frame(_smooth(pos[:, p])[0], topo)
      back = ", then back" if dist[-1] < RETURN_SHARE * dist[far] else ", and holds"
      lines.append(f"{step}. {who} whole body leads from {_when(onset, t)}: {_cm(travel[p])} "
                   f"{_direction_words(_unit(frame @ (root[far] - root[0])))}, peak at "
                   f"{_when(far, t)}{back}.")
      step += 1
    for i, m in enumerate(chain):
      back = ", then back" if m.returns else ", and holds"
      if i == 0 and not travels[p]:
        head = f"{who} {part_words(m.part)} leads from {_when(m.onset, t)}"
      else:
        ref = onset if travels[p] else chain[0].onset
        w = part_words(m.part)
        head = (f"The {w} follows" if m.onset > ref else f"The {w} moves with it"
                if m.onset == ref else f"The {w} starts earlier")
        head += f" at {_when(m.onset, t)}"
      lines.append(f"{step}. {head}: {_cm(m.peak_m)} {_direction_words(m.direction)}, "
                   f"peak at {_when(m.peak, t)}{back}.")
      step += 1
    still = [part_words(m.part) for m in per[p] if m.peak_m < MIN_MOTION_M]
    if still and not travels[p]:
      lines.append(f"{step}. The {_join(still[:3])} stay{'s' if len(still) == 1 else ''} "
                   f"nearly still.")
      step += 1
  if two:
    lines.append(f"{step}. " + _relation(pos, topo, persons))
  lines.append(f"Label: {label}")
  return "\n".join(lines)


def _relation(pos: np.ndarray, topo: topology_lib.Topology, persons: list[int]) -> str:
  """How two persons move relative to each other: distance and the closest hand contact."""
  a, b = persons[:2]
  ra, rb = _smooth(pos[:, a, topo.root]), _smooth(pos[:, b, topo.root])
  dist = np.linalg.norm(ra - rb, axis=-1)
  start, end, low = float(dist[0]), float(dist[-1]), float(dist.min())
  if end < start - 0.15:
    trend = f"they come closer, from {start:.1f} m to {end:.1f} m apart"
  elif end > start + 0.15:
    trend = f"they move apart, from {start:.1f} m to {end:.1f} m"
  else:
    trend = f"they stay about {start:.1f} m apart (closest {low:.1f} m)"
  best = None
  xa, xb = _smooth(pos[:, a]), _smooth(pos[:, b])
  for who, (src, dst) in ((1, (xa, xb)), (2, (xb, xa))):
    for hand in ("left_hand", "right_hand"):
      if hand not in topo.parts:
        continue
      h = src[:, list(topo.parts[hand])].mean(axis=1)  # [T, 3]
      gap = np.linalg.norm(h[:, None] - dst, axis=-1).min(axis=1)  # nearest joint of the other
      f = int(np.argmin(gap))
      if best is None or gap[f] < best[0]:
        best = (float(gap[f]), who, hand, f)
  gap, who, hand, f = best
  other = 2 if who == 1 else 1
  if gap < 0.15:
    touch = f"person {who}'s {part_words(hand)} reaches person {other} at {_when(f, pos.shape[0])}"
  else:
    touch = f"their hands stay at least {_cm(gap)} from the other body"
  return f"Between them, {trend}; {touch}."


def explain_file(path: str, label: str | None = None) -> str:
  """The rationale of one skeleton file (`skel_llm.skeleton.load`), NTU labels from the name."""
  import os
  import re

  from skel_llm import skeleton
  from skel_llm.render import camera
  rec = skeleton.load(path)
  topo = topology_lib.get(rec.format)
  if label is None:
    m = re.search(r"A(\d{3})", os.path.basename(path)) if rec.format == "ntu25" else None
    if m is None:
      raise ValueError(f"{path}: give the label (only NTU file names carry one)")
    from skel_llm.data.classnames import NTU120_CLASSES
    label = NTU120_CLASSES[int(m.group(1)) - 1]
  return rationale(camera.place(rec.positions, "auto", rec.topology, is_2d=rec.is_2d), topo.name,
                   label)


def main(argv=None) -> int:
  import argparse
  parser = argparse.ArgumentParser(
      description="Print the kinematic teacher's rationale of skeleton files.")
  parser.add_argument("files", nargs="+", help="any file skel_llm.skeleton.load reads")
  parser.add_argument("--label", default=None, help="the true label (NTU: from the file name)")
  args = parser.parse_args(argv)
  for path in args.files:
    print(f"== {path}\n{explain_file(path, args.label)}\n")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
