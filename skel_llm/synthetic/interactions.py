"""Two-person motion programs: both persons' joint angles, their spacing, and a description.

The persons stand facing each other along the x axis: person A at x = -d/2
turned to face +x, person B at x = +d/2 facing -x (before the camera view is
applied). Programs choose d so that the contact (hands meeting, hands on the
chest) actually happens in the forward kinematics. Descriptions say `{A}` and
`{B}`; the generator replaces them with "the person on the left/right" as seen
from the camera.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from skel_llm.synthetic import kinematics as K
from skel_llm.synthetic.motions import Ctx, deg, times


@dataclasses.dataclass
class Interaction:
  """What a two-person program returns.

  Attributes:
    spacing: distance d between the two spine bases, metres.
    steps: description sentences with `{A}` / `{B}` placeholders.
  """

  spacing: float
  steps: list[str]


def _peak_forward_reach(c: Ctx, joint: int) -> np.ndarray:
  """float[3] body-frame position of `joint` relative to the spine base at its most forward frame."""
  pos = K.forward_kinematics(c.body, c.pose)
  rel = pos[:, joint] - pos[:, K.SPINE_BASE]
  return rel[np.argmin(rel[:, 2])]


def _reach_right_hand(c: Ctx, env: np.ndarray, flex: float, elbow: float, shake: np.ndarray,
                      turn_in: float) -> None:
  j = K.LIMB["right"]
  c.pose.add(j["shoulder"], "y", deg(turn_in) * env)
  c.pose.add(j["shoulder"], "x", deg(flex + 8.0 * shake) * env)
  c.pose.add(j["elbow"], "x", deg(elbow) * env - c.rest_elbow * env)


def _turn_in_to_centre(c: Ctx, env: np.ndarray, flex: float, elbow: float) -> float:
  """Degrees of inward arm rotation (+y) that put the reaching right hand on the body's centre line.

  Solved by the secant method on the forward kinematics of the reach pose.
  """
  t = int(np.argmax(env))
  base = dict(c.pose.local)

  def hand_x(turn_in: float) -> float:
    c.pose.local = dict(base)
    _reach_right_hand(c, env, flex, elbow, 0.0 * env, turn_in)
    pos = K.forward_kinematics(c.body, c.pose)
    return float(pos[t, K.R_HAND, 0] - pos[t, K.SPINE_BASE, 0])

  a, b = 0.0, 25.0
  fa, fb = hand_x(a), hand_x(b)
  for _ in range(4):
    if fb == fa:
      break
    a, b, fa = b, b - fb * (b - a) / (fb - fa), fb
    fb = hand_x(b)
  c.pose.local = base
  return b


def handshake(a: Ctx, b: Ctx) -> Interaction:
  n = a.count(2, 3)
  flex = a.uniform(40, 55, cap=60)
  elbow = float(a.rng.uniform(25, 40))
  reach = 0.0
  for c in (a, b):
    env = c.win.pulse((0.0, 0.3), (0.75, 1.0))
    shake = c.win.oscillation(n, 0.35, 0.7) * env
    turn_in = _turn_in_to_centre(c, env, flex, elbow)
    _reach_right_hand(c, env, flex, elbow, shake, turn_in)
    reach += -_peak_forward_reach(c, K.R_HAND)[2]
  return Interaction(
      spacing=reach,
      steps=["{A} and {B} each reach the right arm forward toward the other.",
             "Their right hands meet in the middle, between them, at about waist to chest height.",
             f"Holding hands, they shake them up and down {times(n)}.",
             "They let go and lower their right arms; the left arms stay at their sides."])


def push(a: Ctx, b: Ctx) -> Interaction:
  flex = a.uniform(75, 90, cap=95)
  back = float(b.rng.uniform(0.15, 0.35)) * b.amp
  wa = a.win
  lift = wa.pulse((0.0, 0.3), (0.75, 1.0))
  thrust = wa.pulse((0.35, 0.5), (0.6, 0.8))
  for side in ("left", "right"):
    j = K.LIMB[side]
    a.pose.add(j["shoulder"], "x", deg(flex) * lift)
    a.pose.add(j["elbow"], "x", deg(90.0) * lift * (1.0 - thrust) - a.rest_elbow * lift)
  a.pose.add(K.LUMBAR, "x", -deg(10.0) * thrust)
  # B is pushed backwards (+z in its own frame) from the moment A's arms extend, and leans back.
  wb = b.win
  shove = wb.ramp(0.5, 0.75)  # from the moment A's arms are fully extended
  b.pose.translate(np.stack([0 * shove, 0 * shove, back * shove], -1))
  b.pose.add(K.LUMBAR, "x", deg(15.0) * wb.pulse((0.5, 0.6), (0.65, 0.9)))
  for side in ("left", "right"):
    b.pose.add(K.LIMB[side]["shoulder"], "z", K.SIDE_SIGN[side] * deg(35.0)
               * wb.pulse((0.5, 0.65), (0.75, 0.95)))
  # Contact: A's hands at full extension touch B's chest (about 0.1 m in front of its spine).
  hand = _peak_forward_reach(a, K.R_HAND)
  spacing = -hand[2] + 0.10 * a.body.height / 1.6
  cm = int(round(100 * back))
  return Interaction(
      spacing=float(spacing),
      steps=["{A} raises both arms in front of the chest with the elbows bent.",
             "{A} straightens both arms forward quickly and pushes {B} in the chest.",
             "{B} is pushed backward about " f"{cm} cm, leaning back and lifting the arms out "
             "to the sides for balance.",
             "{A} lowers both arms and {B} regains balance, now further away."])
