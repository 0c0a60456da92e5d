"""Motion programs: joint-angle trajectories for each synthetic action, and their true descriptions.

Each program adds local rotations (see `kinematics` for the sign conventions)
to a `Pose` inside the clip's active window and returns the step-by-step
sentences that describe what it did, phrased from the angles it actually used
(the amplitude knob scales them; the description follows).

Two-person programs get one `Scene` with both persons' poses.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from skel_llm.synthetic import kinematics as K
from skel_llm.synthetic.timing import Window

OTHER_SIDE = {"left": "right", "right": "left"}


def deg(x) -> np.ndarray:
  return np.deg2rad(x)


def about(angle_deg: float, step: int = 5) -> int:
  """Angle rounded to `step` degrees, for descriptions."""
  return int(step * round(angle_deg / step))


def times(n: int) -> str:
  return {1: "once", 2: "twice"}.get(n, f"{n} times")


@dataclasses.dataclass
class Ctx:
  """What a single-person motion program works on.

  Attributes:
    pose: the person's local rotations, filled by the program.
    body: the person's segment offsets.
    win: the active window in clip time.
    rng: the clip's random generator (programs draw their own ranges from it).
    amp: amplitude factor (1 = typical range of motion).
    side: 'left' or 'right' for lateral actions, '' otherwise.
    rest_elbow: rest flexion of both elbows (radians), so programs can straighten them.
    rest_abduction: rest sideways angle of both arms (radians), so descriptions can count it.
  """

  pose: K.Pose
  body: K.Body
  win: Window
  rng: np.random.Generator
  amp: float
  side: str = ""
  rest_elbow: float = 0.0
  rest_abduction: float = 0.0

  @property
  def rest_abduction_deg(self) -> float:
    return float(np.rad2deg(self.rest_abduction))

  def uniform(self, lo: float, hi: float, cap: float | None = None) -> float:
    """A draw from [lo, hi] scaled by the amplitude factor (degrees), optionally capped."""
    v = float(self.rng.uniform(lo, hi)) * self.amp
    return min(v, cap) if cap is not None else v

  def count(self, lo: int, hi: int) -> int:
    return int(self.rng.integers(lo, hi + 1))


def _arm_height(flex_deg: float) -> str:
  """Where a straight arm flexed forward by `flex_deg` points, in words."""
  if flex_deg >= 130:
    return "until the hand is above the head"
  if flex_deg >= 100:
    return "until the hand is above shoulder height"
  if flex_deg >= 75:
    return "until it points straight forward at about shoulder height"
  return f"to about {about(flex_deg)} degrees in front of the body, below shoulder height"


# ----------------------------------------------------------------------------- single limb


def raise_arm(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  flex = c.uniform(115, 165, cap=175)
  env = c.win.pulse((0.0, 0.4), (0.6, 1.0))
  c.pose.add(j["shoulder"], "x", deg(flex) * env)
  c.pose.add(j["elbow"], "x", -c.rest_elbow * env)
  return [f"The {c.side} arm swings forward and upward with the elbow straight, "
          f"{_arm_height(flex)}.",
          f"The {c.side} arm holds that position for a moment.",
          f"The {c.side} arm comes back down to the side of the body.",
          f"The {OTHER_SIDE[c.side]} arm and both legs stay still."]


def raise_leg(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  flex = c.uniform(40, 65, cap=80)
  env = c.win.pulse((0.0, 0.4), (0.6, 1.0))
  c.pose.add(j["hip"], "x", deg(flex) * env)
  c.pose.add(K.LUMBAR, "x", deg(4.0) * env)  # slight backward lean for balance
  return [f"Standing on the {OTHER_SIDE[c.side]} leg, the person lifts the {c.side} leg forward "
          f"with the knee straight, to about {about(flex)} degrees.",
          f"The {c.side} leg is held up for a moment.",
          f"The {c.side} leg lowers until the foot is back on the floor.",
          "The arms stay relaxed at the sides."]


def swing_arm(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  amp = c.uniform(30, 50, cap=60)
  n = c.count(2, 3)
  env = c.win.pulse((0.0, 0.15), (0.85, 1.0))
  c.pose.add(j["shoulder"], "x", deg(amp) * c.win.oscillation(n) * env)
  return [f"The {c.side} arm starts to swing forward from the shoulder, the elbow nearly straight.",
          f"It swings forward and backward like a pendulum {times(n)}, "
          f"about {about(amp)} degrees to each side of vertical.",
          f"The {c.side} arm comes to rest at the side of the body.",
          f"The {OTHER_SIDE[c.side]} arm and the legs stay still."]


def swing_leg(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  amp = c.uniform(20, 35, cap=40)
  n = c.count(2, 3)
  env = c.win.pulse((0.0, 0.15), (0.85, 1.0))
  osc = c.win.oscillation(n) * env
  c.pose.add(j["hip"], "x", deg(amp) * osc)
  c.pose.add(j["knee"], "x", -deg(15.0) * np.clip(-osc, 0, None))  # knee folds on the back swing
  return [f"Standing on the {OTHER_SIDE[c.side]} leg, the person lifts the {c.side} foot "
          "slightly off the floor.",
          f"The {c.side} leg swings forward and backward from the hip {times(n)}, "
          f"about {about(amp)} degrees each way.",
          f"The {c.side} foot returns to the floor.",
          "The arms stay relaxed at the sides."]


def stretch_arm(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  abd = c.uniform(75, 100, cap=110)
  env = c.win.pulse((0.0, 0.4), (0.6, 1.0))
  c.pose.add(j["shoulder"], "z", K.SIDE_SIGN[c.side] * deg(abd) * env)
  c.pose.add(j["elbow"], "x", -c.rest_elbow * env)
  total = abd + c.rest_abduction_deg  # the rest pose already holds the arm a little out
  level = ("at about shoulder height" if total >= 75 else "below shoulder height") \
      if total <= 105 else "a little above shoulder height"
  return [f"The {c.side} arm lifts out sideways, away from the body, with the elbow straight.",
          f"It stretches out to the {c.side} {level}, about {about(total)} degrees from the body.",
          f"The {c.side} arm is held out for a moment, then lowers back to the side.",
          f"The {OTHER_SIDE[c.side]} arm and the legs stay still."]


def stretch_leg(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  abd = c.uniform(25, 45, cap=50)
  env = c.win.pulse((0.0, 0.4), (0.6, 1.0))
  c.pose.add(j["hip"], "z", K.SIDE_SIGN[c.side] * deg(abd) * env)
  c.pose.add(K.LUMBAR, "z", K.SIDE_SIGN[c.side] * deg(0.2 * abd) * env)  # trunk leans away
  return [f"Standing on the {OTHER_SIDE[c.side]} leg, the person moves the {c.side} leg out "
          "to the side with the knee straight.",
          f"The {c.side} leg reaches about {about(abd)} degrees away from the body and is held "
          "there briefly.",
          f"The {c.side} leg comes back in and the foot returns to the floor.",
          "The arms stay close to the body."]


def bend_arm(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  flex = c.uniform(100, 135, cap=145)
  n = c.count(1, 2)
  s = c.win.phase
  # n smooth curls: 0 -> flex -> 0 per repetition.
  curl = np.where((s > 0) & (s < 1), 0.5 - 0.5 * np.cos(2 * np.pi * n * s), 0.0)
  c.pose.add(j["elbow"], "x", deg(flex) * curl)
  c.pose.add(j["shoulder"], "x", deg(10.0) * curl)
  total = flex + float(np.rad2deg(c.rest_elbow))  # the relaxed elbow is already a little bent
  return [f"The {c.side} upper arm stays by the side of the body.",
          f"The {c.side} forearm folds up at the elbow, about {about(total)} degrees, "
          "bringing the hand toward the shoulder, then straightens again"
          + (f"; this curl is done {times(n)}." if n > 1 else "."),
          f"The {OTHER_SIDE[c.side]} arm and the legs stay still."]


def bend_leg(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  flex = c.uniform(70, 105, cap=120)
  env = c.win.pulse((0.0, 0.4), (0.6, 1.0))
  c.pose.add(j["hip"], "x", -deg(8.0) * env)
  c.pose.add(j["knee"], "x", -deg(flex) * env)
  return [f"Standing on the {OTHER_SIDE[c.side]} leg, the person bends the {c.side} knee.",
          f"The {c.side} foot lifts up behind the body, the knee folding about {about(flex)} "
          "degrees while the thigh stays nearly vertical.",
          f"The {c.side} knee straightens and the foot returns to the floor.",
          "The arms stay relaxed at the sides."]


def wave_hand(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  sign = K.SIDE_SIGN[c.side]
  abd = float(c.rng.uniform(70, 85))  # plus the rest abduction: upper arm about level
  wave = c.uniform(15, 30, cap=35)
  n = c.count(2, 4)
  env = c.win.pulse((0.0, 0.2), (0.8, 1.0))
  c.pose.add(j["shoulder"], "z", sign * deg(abd) * env)
  c.pose.add(j["shoulder"], "x", deg(15.0) * env)
  # The forearm continues the sideways rotation until it points up, then sways about that.
  upright = 180.0 - abd - c.rest_abduction_deg
  c.pose.add(j["elbow"], "z", sign * deg(upright + wave * c.win.oscillation(n, 0.25, 0.75)) * env)
  return [f"The {c.side} arm rises out to the side until the upper arm is about level with the "
          "shoulder and the forearm points up, the hand beside the head.",
          f"The {c.side} hand waves from side to side {times(n)}, swinging about {about(wave)} "
          "degrees each way from the elbow.",
          f"The {c.side} arm lowers back to the side of the body.",
          f"The {OTHER_SIDE[c.side]} arm and the legs stay still."]


def kick_leg(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  hip = c.uniform(55, 80, cap=90)
  chamber_knee = c.uniform(80, 100)
  lift = c.win.pulse((0.0, 0.3), (0.75, 1.0))
  snap = c.win.pulse((0.3, 0.45), (0.55, 0.75))
  c.pose.add(j["hip"], "x", deg(hip) * lift)
  c.pose.add(j["knee"], "x", -deg(chamber_knee) * lift * (1.0 - 0.92 * snap))
  c.pose.add(K.LUMBAR, "x", deg(8.0) * lift)
  return [f"Standing on the {OTHER_SIDE[c.side]} leg, the person lifts the {c.side} knee up "
          "in front of the body, the lower leg hanging down.",
          f"The {c.side} lower leg snaps forward so the leg is almost straight, kicking forward "
          f"at about {about(hip)} degrees.",
          f"The {c.side} lower leg folds back, then the foot returns to the floor.",
          "The trunk leans back slightly during the kick; the arms stay at the sides."]


def punch_hand(c: Ctx) -> list[str]:
  j = K.LIMB[c.side]
  n = c.count(1, 2)
  reach = c.uniform(80, 95, cap=100)
  guard = c.win.pulse((0.0, 0.2), (0.85, 1.0))
  s = np.clip((c.win.phase - 0.2) / 0.65, 0.0, 1.0)
  strike = np.where((s > 0) & (s < 1), np.sin(np.pi * n * s) ** 2, 0.0)
  c.pose.add(j["shoulder"], "x", deg(25.0 + (reach - 25.0) * strike) * guard)
  c.pose.add(j["elbow"], "x", deg(110.0 * (1.0 - strike)) * guard - c.rest_elbow * guard)
  height = "at about shoulder height" if reach >= 78 else "at chest height"
  return [f"The {c.side} hand comes up in front of the chest, the elbow bent.",
          f"The {c.side} fist shoots straight forward {height} as the arm extends, "
          f"then pulls back to the chest; this punch is thrown {times(n)}.",
          f"The {c.side} arm lowers to the side of the body.",
          f"The {OTHER_SIDE[c.side]} arm and the legs stay still."]


# ----------------------------------------------------------------------------- both arms / whole body


def clap_hands(c: Ctx) -> list[str]:
  n = c.count(2, 4)
  flex = c.uniform(35, 50, cap=60)
  up = c.win.pulse((0.0, 0.2), (0.8, 1.0))
  # Hands close near the centre line (22 degrees of adduction), open 20-30 degrees between.
  opening = float(c.rng.uniform(20, 30))
  closed = 0.5 - 0.5 * np.cos(2 * np.pi * n * np.clip((c.win.phase - 0.2) / 0.6, 0, 1))
  for side in ("left", "right"):
    j = K.LIMB[side]
    sign = K.SIDE_SIGN[side]
    # +y turns the right arm toward the centre line, -y the left one.
    c.pose.add(j["shoulder"], "y", sign * deg(22.0 - opening * (1.0 - closed)) * up)
    c.pose.add(j["shoulder"], "x", deg(flex) * up)
    c.pose.add(j["elbow"], "x", deg(55.0) * up - c.rest_elbow * up)
  return ["Both arms come up in front of the chest with the elbows bent.",
          f"The hands move apart and clap together in front of the chest {times(n)}.",
          "Both arms lower back to the sides.",
          "The legs stay still."]


def squat_angles(pose: K.Pose, body: K.Body, alpha: np.ndarray,
                 sides: tuple[str, ...] = ("left", "right")) -> None:
  """Squat by hip flexion `alpha` (float[T] radians) of `sides`: knees 2 alpha, ankles alpha.

  With equal thigh and shank lengths L the ankle stays under the hip and the
  foot stays flat, so the spine base drops by 2 L (1 - cos alpha) while the
  feet of `sides` do not move.
  """
  for side in sides:
    j = K.LIMB[side]
    pose.add(j["hip"], "x", alpha)
    pose.add(j["knee"], "x", -2.0 * alpha)
    pose.add(j["ankle"], "x", alpha)
  shank = -body.offsets[K.L_KNEE, 1]
  pose.translate(np.stack([0 * alpha, -2.0 * shank * (1.0 - np.cos(alpha)), 0 * alpha], -1))


def squat(c: Ctx) -> list[str]:
  alpha = c.uniform(50, 80, cap=85)
  env = c.win.pulse((0.0, 0.4), (0.6, 1.0))
  squat_angles(c.pose, c.body, deg(alpha) * env)
  c.pose.add(K.LUMBAR, "x", -deg(0.45 * alpha) * env)
  for side in ("left", "right"):
    c.pose.add(K.LIMB[side]["shoulder"], "x", deg(0.9 * alpha) * env)
  return ["The person bends both knees and hips at the same time and lowers the body "
          f"into a squat, the thighs about {about(alpha)} degrees from vertical.",
          "The trunk leans a little forward and both arms reach forward for balance.",
          "The feet stay flat on the floor.",
          "The person straightens the legs and stands back up."]


def jump(c: Ctx) -> list[str]:
  crouch = c.uniform(25, 40, cap=45)
  height = float(c.rng.uniform(0.10, 0.22)) * c.amp
  w = c.win
  dip = w.pulse((0.0, 0.25), (0.25, 0.35)) + w.pulse((0.65, 0.75), (0.75, 1.0))
  squat_angles(c.pose, c.body, deg(crouch) * dip)
  flight = w.segment(0.35, 0.65)
  lift = np.where((flight > 0) & (flight < 1), 4.0 * flight * (1.0 - flight), 0.0)
  c.pose.translate(np.stack([0 * lift, height * lift, 0 * lift], -1))
  # Ankles point the toes down in the air; arms swing forward and up during take-off.
  for side in ("left", "right"):
    j = K.LIMB[side]
    c.pose.add(j["ankle"], "x", -deg(20.0) * lift)
    c.pose.add(j["shoulder"], "x", deg(100.0) * w.pulse((0.2, 0.45), (0.6, 0.85)))
  cm = int(round(100 * height))
  return ["The person bends the knees into a shallow crouch.",
          f"Both legs push off and the whole body rises about {cm} cm off the floor, "
          "the arms swinging forward and up.",
          "Both feet land together and the knees bend to absorb the landing.",
          "The person straightens up and the arms come back down."]


def turn(c: Ctx) -> list[str]:
  angle = c.uniform(70, 130, cap=160)
  sign = 1.0 if c.side == "left" else -1.0  # +y yaw turns toward the person's left
  w = c.win
  c.pose.add(K.SPINE_BASE, "y", sign * deg(angle) * w.ramp(0.0, 1.0))
  steps = c.count(2, 3)
  for i in range(steps):
    side = ("left", "right")[(i + (c.side == "right")) % 2]
    j = K.LIMB[side]
    lift = w.pulse((i / steps, (i + 0.5) / steps), ((i + 0.5) / steps, (i + 1) / steps))
    c.pose.add(j["hip"], "x", deg(25.0) * lift)
    c.pose.add(j["knee"], "x", -deg(45.0) * lift)
  return [f"The person starts to rotate the whole body toward their {c.side}.",
          f"Taking {steps} small steps in place, the body turns about {about(angle, 10)} degrees "
          f"to the {c.side} around the vertical axis.",
          f"The person stops, now facing further to the {c.side} than at the start.",
          "The arms stay relaxed at the sides."]


def bow(c: Ctx) -> list[str]:
  angle = c.uniform(35, 60, cap=75)
  env = c.win.pulse((0.0, 0.35), (0.65, 1.0))
  c.pose.add(K.LUMBAR, "x", -deg(angle) * env)
  c.pose.add(K.NECK, "x", -deg(10.0) * env)
  for side in ("left", "right"):
    c.pose.add(K.LIMB[side]["shoulder"], "x", deg(0.8 * angle) * env)  # arms keep hanging
  return [f"The person bends forward at the waist, the upper body tipping about {about(angle)} "
          "degrees with the head lowered.",
          "The arms hang down in front of the body and the legs stay straight.",
          "The person holds the bow briefly.",
          "The upper body rises back to upright."]


def lean(c: Ctx) -> list[str]:
  angle = c.uniform(15, 28, cap=35)
  sign = -K.SIDE_SIGN[c.side]  # +z leans toward the person's left
  env = c.win.pulse((0.0, 0.4), (0.6, 1.0))
  c.pose.add(K.LUMBAR, "z", sign * deg(angle) * env)
  return [f"The person bends the upper body sideways toward their {c.side}, about {about(angle)} "
          "degrees from upright.",
          "The hips and legs stay in place.",
          "The person holds the lean for a moment.",
          "The upper body returns to upright."]


def nod_head(c: Ctx) -> list[str]:
  angle = c.uniform(22, 35, cap=40)
  n = c.count(2, 3)
  s = c.win.phase
  nods = np.where((s > 0) & (s < 1), 0.5 - 0.5 * np.cos(2 * np.pi * n * s), 0.0)
  c.pose.add(K.NECK, "x", -deg(angle) * nods)
  return [f"The person tips the head forward, about {about(angle)} degrees, chin toward the chest.",
          f"The head comes back up; the nod is repeated so the head dips {times(n)} in all.",
          "The shoulders, arms and legs stay still."]


def hop(c: Ctx) -> list[str]:
  """Hops on the leg named by `c.side`; the other foot is held up behind."""
  free = OTHER_SIDE[c.side]
  jf = K.LIMB[free]
  n = c.count(2, 3)
  height = float(c.rng.uniform(0.05, 0.10)) * c.amp
  fold = c.uniform(60, 85, cap=95)
  hold = c.win.pulse((0.0, 0.12), (0.88, 1.0))
  c.pose.add(jf["hip"], "x", deg(10.0) * hold)
  c.pose.add(jf["knee"], "x", -deg(fold) * hold)
  # Hop k fills phases [0.12, 0.88] * (k .. k+1) / n: landing crouch, flight (parabola), crouch.
  s = np.clip((c.win.phase - 0.12) / 0.76, 0.0, 1.0) * n
  f = s - np.minimum(np.floor(s), n - 1)  # 0 -> 1 within each hop
  crouch = np.clip(1.0 - f / 0.25, 0.0, 1.0) + np.clip((f - 0.75) / 0.25, 0.0, 1.0)
  dip = crouch * c.win.pulse((0.0, 0.12), (0.88, 1.0))
  flight = np.clip((f - 0.25) / 0.5, 0.0, 1.0)
  lift = 4.0 * flight * (1.0 - flight)
  squat_angles(c.pose, c.body, deg(15.0) * dip, sides=(c.side,))
  c.pose.translate(np.stack([0 * lift, height * lift, 0 * lift], -1))
  cm = int(round(100 * height))
  return [f"The person bends the {free} knee and holds the {free} foot up behind the body.",
          f"Standing on the {c.side} leg, the person hops {times(n)}, the body rising about "
          f"{cm} cm each time and the {c.side} knee bending on every landing.",
          f"The {free} foot comes back down to the floor.",
          "The arms stay relaxed at the sides."]


def march(c: Ctx) -> list[str]:
  steps = 2 * c.count(2, 3)
  thigh = c.uniform(50, 70, cap=80)
  first = ("left", "right")[int(c.rng.integers(2))]
  order = (first, OTHER_SIDE[first])
  for i in range(steps):
    side = order[i % 2]
    raise_ = c.win.pulse((i / steps, (i + 0.5) / steps), ((i + 0.5) / steps, (i + 1) / steps))
    j, o = K.LIMB[side], K.LIMB[OTHER_SIDE[side]]
    c.pose.add(j["hip"], "x", deg(thigh) * raise_)
    c.pose.add(j["knee"], "x", -deg(thigh) * raise_)  # the shank hangs straight down
    c.pose.add(o["shoulder"], "x", deg(20.0) * raise_)  # the opposite arm swings forward
    c.pose.add(j["shoulder"], "x", -deg(15.0) * raise_)
  return [f"The person marches in place, lifting the {first} knee first.",
          f"The knees come up alternately, {steps} knee raises in all, each thigh rising to "
          f"about {about(thigh)} degrees with the lower leg hanging straight down.",
          "Each arm swings forward as the opposite knee rises.",
          "The person ends standing on both feet."]
