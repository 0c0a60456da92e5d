"""`generate_clip`: one synthetic action clip as a `SkeletonRecord` in Kinect camera metres.

Pipeline per clip: draw the variation knobs from the seed (any knob passed
explicitly wins), build each person's body, set the relaxed rest pose, run the
class's motion program (joint-angle trajectories), add a little idle sway, run
forward kinematics, place the person(s) in front of the camera (view yaw,
distance, height, tilt), then add sensor noise and drop joints. The
description is written by the motion program from the angles it used, plus a
first line about the viewpoint and a final `Label: <name>` line.

Camera convention (Kinect v2, as in NTU files): x to the subject's right when
they face the camera, y up, z the depth away from the camera, metres. A 60
degree pinhole camera at the origin looking down +z sees the whole person.
"""

from __future__ import annotations

import numpy as np

from skel_llm.skeleton.record import SkeletonRecord
from skel_llm.synthetic import formats
from skel_llm.synthetic import kinematics as K
from skel_llm.synthetic.classes import CLASSES, label_index
from skel_llm.synthetic.motions import Ctx, about
from skel_llm.synthetic.timing import make_window

FPS = 30.0

# Default range of every variation knob: (low, high) of a uniform draw.
KNOB_RANGES = {
    "speed": (0.8, 1.25),            # motion tempo; the action fills base_length / speed of the clip
    "amplitude": (0.8, 1.1),         # scales every joint-angle range of the motion program
    "body_scale": (0.88, 1.1),       # overall size (1 = head joint ~1.5 m above the floor)
    "view_yaw_deg": (-50.0, 50.0),   # person (or pair) turned about the vertical axis; + = to their left
    "camera_pitch_deg": (-8.0, 8.0),  # camera tilt; + = camera looks down
    "distance": (2.6, 3.4),          # depth of the spine base (pair: of the pair's centre), metres
    "lateral": (-0.3, 0.3),          # x offset of the person / pair, metres
    "camera_height": (0.7, 1.1),     # camera height above the floor, metres
    "noise_std": (0.0, 0.006),       # Gaussian joint jitter, metres
    "missing_prob": (0.0, 0.0),      # probability that a joint is missing in a frame
}
TWO_PERSON_YAW_DEG = (-35.0, 35.0)  # keeps the two persons on their own side of the picture


def _draw_knobs(rng: np.random.Generator, persons: int, given: dict) -> dict:
  unknown = sorted(set(given) - set(KNOB_RANGES))
  if unknown:
    raise TypeError(f"unknown variation knob(s) {unknown}; known: {sorted(KNOB_RANGES)}")
  knobs = {}
  for name, (lo, hi) in KNOB_RANGES.items():
    if name == "view_yaw_deg" and persons == 2:
      lo, hi = TWO_PERSON_YAW_DEG
    value = given.get(name)
    if isinstance(value, (tuple, list)):  # a (low, high) range replaces the default range
      if len(value) != 2 or not float(value[0]) <= float(value[1]):
        raise ValueError(f"variation knob {name}: a range must be (low, high), got {value!r}")
      lo, hi = float(value[0]), float(value[1])
      value = None
    draw = float(rng.uniform(lo, hi))  # always drawn, so a given knob leaves the others unchanged
    knobs[name] = draw if value is None else float(value)
  for name in ("speed", "amplitude", "body_scale", "distance"):
    if knobs[name] <= 0:
      raise ValueError(f"variation knob {name} must be positive, got {knobs[name]}")
  if knobs["noise_std"] < 0 or not 0 <= knobs["missing_prob"] <= 1:
    raise ValueError(f"noise_std must be >= 0 and missing_prob in [0, 1], got {knobs}")
  return knobs


def _rest_pose(c: Ctx) -> None:
  """Relaxed arms: slightly out to the sides (outermost rotation), elbows slightly bent."""
  for side in ("left", "right"):
    j = K.LIMB[side]
    c.pose.add(j["shoulder"], "z", K.SIDE_SIGN[side] * c.rest_abduction)
    c.pose.add(j["elbow"], "x", c.rest_elbow)


def _sway(c: Ctx, rng: np.random.Generator) -> None:
  """A slow +-1 degree sideways sway of the trunk, as in quiet standing."""
  phase = rng.uniform(0, 2 * np.pi)
  c.pose.add(K.LUMBAR, "z", np.deg2rad(1.0) * np.sin(2 * np.pi * 0.6 * c.win.u + phase))


def _facing_phrase(yaw_deg: float) -> str:
  if abs(yaw_deg) < 15:
    return "facing the camera"
  side = "left" if yaw_deg > 0 else "right"
  return f"facing the camera but turned about {about(abs(yaw_deg))} degrees to their {side}"


def _place(pos: np.ndarray, yaw: float, origin: np.ndarray) -> np.ndarray:
  """Rotates body-frame float[T, J, 3] by `yaw` about y and moves it to `origin`."""
  r = K.rot("y", np.array([yaw]))[0]
  return pos @ r.T + origin


def generate_clip(label: int | str, seed: int, *, num_frames: int = 48, topology: str = "ntu25",
                  **variation_knobs) -> SkeletonRecord:
  """One synthetic action clip.

  Args:
    label: class index or name from `CLASS_NAMES`.
    seed: the clip is a deterministic function of (label, seed, num_frames, knobs).
    num_frames: T, frames at 30 fps.
    topology: output skeleton format, any of `formats.FORMATS` ('ntu25', 'kinect20', 'h36m17',
      'smpl22', 'coco17', 'openpose18'), written in that format's own frame and units
      (see `skel_llm.synthetic.formats`).
    **variation_knobs: any of `KNOB_RANGES`: a number fixes its value; a (low, high) pair
      draws it from that range instead of the default one.

  Returns:
    A `SkeletonRecord` in `topology` with positions float32[T, P, J, 3] (P = 2 for two-person
    classes), valid float32[T, P, J] (0 where a joint was dropped; its position is then 0) and
    metadata `label`, `label_index`, `description`, `verb`, `side`, `part`, `seed`, `knobs`,
    `camera_step_back` (metres the camera moved back to keep every joint in view; usually 0),
    plus `image_size` for the 2D formats.
  """
  index = label_index(label)
  cls = CLASSES[index]
  # Any integer seed (negative or beyond 32 bits) gets its own stream.
  rng = np.random.default_rng([int(seed) % 2**128, index, 0x5EED])
  knobs = _draw_knobs(rng, cls.persons, variation_knobs)
  win = make_window(num_frames, knobs["speed"], rng, cls.base_length)
  ctxs = []
  for _ in range(cls.persons):
    scale = knobs["body_scale"] * (1.0 if cls.persons == 1 else rng.uniform(0.95, 1.05))
    body = K.make_body(rng, scale)
    ctxs.append(Ctx(pose=K.Pose(num_frames), body=body, win=win, rng=rng, amp=knobs["amplitude"],
                    side=cls.side if cls.side in ("left", "right") else "",
                    rest_elbow=float(np.deg2rad(rng.uniform(5.0, 15.0))),
                    rest_abduction=float(np.deg2rad(rng.uniform(4.0, 10.0)))))

  yaw = np.deg2rad(knobs["view_yaw_deg"])
  floor_y = -knobs["camera_height"]
  centre = np.array([knobs["lateral"], 0.0, knobs["distance"]])
  if cls.persons == 1:
    _rest_pose(ctxs[0])
    steps = cls.program(ctxs[0])
    _sway(ctxs[0], rng)
    body_pos = [K.forward_kinematics_with_landmarks(ctxs[0].body, ctxs[0].pose)]
    yaws, offsets = [yaw], [np.zeros(3)]
    first = f"The person stands upright, {_facing_phrase(knobs['view_yaw_deg'])}, arms relaxed."
  else:
    for c in ctxs:
      _rest_pose(c)
    inter = cls.program(*ctxs)
    for c in ctxs:
      _sway(c, rng)
    body_pos = [K.forward_kinematics_with_landmarks(c.body, c.pose) for c in ctxs]
    half = inter.spacing / 2.0
    # A stands at -x facing +x (yaw -90 deg), B at +x facing -x; the pair then turns by `yaw`.
    pair = K.rot("y", np.array([yaw]))[0]
    offsets = [pair @ np.array([-half, 0.0, 0.0]), pair @ np.array([half, 0.0, 0.0])]
    yaws = [yaw - np.pi / 2, yaw + np.pi / 2]
    steps = inter.steps
    first = (f"Two people stand facing each other about {inter.spacing:.1f} m apart, "
             "side-on to the camera.")

  persons = []
  for pos, c, y, off in zip(body_pos, ctxs, yaws, offsets):
    origin = centre + off + np.array([0.0, floor_y + c.body.floor_to_root, 0.0])
    persons.append(_place(pos, y, origin))
  points = np.stack(persons, axis=1)  # [T, P, 25 + landmarks, 3]
  # A camera tilted down by `pitch` sees the world rotated up by `pitch` about its x axis.
  tilt = K.rot("x", np.array([np.deg2rad(knobs["camera_pitch_deg"])]))[0]
  points = points @ tilt.T

  # Keep everyone inside a 56 degree cone (the renderer's camera sees 60): if a pose reaches out
  # of it (an arm raised overhead close to a low camera), the camera steps back along its axis.
  reach = np.max(np.abs(points[..., :2]), axis=-1) / np.tan(np.deg2rad(28.0)) - points[..., 2]
  step_back = float(max(0.0, reach.max()))
  points = points + np.array([0.0, 0.0, step_back])

  if cls.persons == 2:
    # Name the persons by where they appear in the picture (u ~ x / z).
    u = points[0, :, K.SPINE_BASE, 0] / points[0, :, K.SPINE_BASE, 2]
    left_first = u[0] < u[1]
    names = {"A": "the person on the left" if left_first else "the person on the right",
             "B": "the person on the right" if left_first else "the person on the left"}
    steps = [_capitalise(s.format(**names)) for s in steps]

  # Sensor noise is drawn for every point whatever the output format, so the NTU joints of a
  # seed are the same in every format.
  points = points + rng.normal(0.0, 1.0, points.shape) * knobs["noise_std"]
  scene_to_world = tilt @ K.rot("y", np.array([yaw]))[0]
  scene_origin = tilt @ (centre + np.array([0.0, floor_y, 0.0])) + np.array([0.0, 0.0, step_back])
  positions, extra = formats.convert(points, topology, scene_to_world=scene_to_world,
                                     scene_origin=scene_origin)
  valid = (rng.random(positions.shape[:3]) >= knobs["missing_prob"]).astype(np.float32)
  positions = positions * valid[..., None]

  lines = [first] + steps
  description = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(lines)) + f"\nLabel: {cls.name}"
  return SkeletonRecord(
      positions=positions.astype(np.float32), valid=valid, format=topology, fps=FPS,
      is_2d=topology in formats.IMAGE_SIZE,
      metadata={"label": cls.name, "label_index": index, "description": description,
                "verb": cls.verb, "side": cls.side, "part": cls.part, "seed": int(seed),
                "knobs": knobs, "camera_step_back": step_back, "dataset": "synthetic_actions",
                **extra})


def _capitalise(s: str) -> str:
  return s[:1].upper() + s[1:]
