"""Skeleton-QA: every answer re-derived from the clip's joints alone, balance, bad input.

The checks below never read the generator's description, knobs or class: they measure the
NTU-25 joint positions (named through `skel_llm.skeleton.topology`) in a body frame found
from the first frame (up: spine base -> spine shoulder; right: left hip -> right hip), and
pick the option whose tag matches what they measure.
"""

import collections

import numpy as np
import pytest
from scipy import signal

from skel_llm import synthetic
from skel_llm.skeleton import topology
from skel_llm.synthetic import qa

NAMES = topology.get("ntu25").joint_names
J = {n: i for i, n in enumerate(NAMES)}


class Body:
  """Joint trajectories float[T, 3] in a body frame (right, up, forward) of frame 0."""

  def __init__(self, positions):
    p = np.asarray(positions[:, 0], np.float64)  # [T, J, 3], person 0
    up = p[0, J["spine_shoulder"]] - p[0, J["spine_base"]]
    up /= np.linalg.norm(up)
    right = p[0, J["right_hip"]] - p[0, J["left_hip"]]
    right -= up * (right @ up)
    right /= np.linalg.norm(right)
    forward = np.cross(up, right)  # a person facing -z with right +x looks along up x right
    self.axes = np.stack([right, up, forward])
    self.p = (p - p[0, J["spine_base"]]) @ self.axes.T
    self.world_up = up
    self.raw = p

  def __getitem__(self, name):
    return self.p[:, J[name]]

  def rel(self, a, b):
    return self[a] - self[b]

  def excursion(self, name, root):
    """Largest 3D distance of joint `name` (relative to `root`) from its frame-0 place."""
    r = self.rel(name, root)
    return float(np.max(np.linalg.norm(r - r[0], axis=-1)))

  def angle(self, a, b, c):
    """float[T] angle at b between b->a and b->c, degrees."""
    u, v = self[a] - self[b], self[c] - self[b]
    cos = np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def peaks(x, frac=0.3):
  x = np.asarray(x, np.float64)
  found, _ = signal.find_peaks(x, prominence=frac * (x.max() - x.min()))
  return len(found)


def cause(b: Body) -> str:
  """What the body does, from the joints: the cause tag of the causal questions."""
  # Feet in the scene (not relative to the pelvis): did both leave the floor at once?
  world = {s: (b.raw[:, J[f"{s}_foot"]] - b.raw[0, J[f"{s}_foot"]]) @ b.world_up
           for s in ("left", "right")}
  both_off = np.minimum(world["left"], world["right"])
  feet = {s: b.excursion(f"{s}_foot", "spine_base") for s in ("left", "right")}
  hands = {s: b.excursion(f"{s}_hand", "spine_shoulder") for s in ("left", "right")}
  knee = {s: 180 - b.angle(f"{s}_hip", f"{s}_knee", f"{s}_ankle") for s in ("left", "right")}
  trunk = b.rel("spine_shoulder", "spine_base")
  trunk_tilt = np.degrees(np.arccos(np.clip(trunk[:, 1] / np.linalg.norm(trunk, axis=-1), -1, 1)))
  # The neck bones are 5-14 cm long: sensor noise alone tilts them by 5-20 degrees, so the
  # head's forward reach (relative to the shoulders, over 5 frames) measures a nod instead.
  nod = np.convolve(b.rel("head", "spine_shoulder")[:, 2], np.ones(5) / 5, "valid")
  if both_off.max() > 0.03 and max(feet.values()) < 2 * min(feet.values()) + 0.05:
    return "jump"
  hi, lo = sorted(feet, key=feet.get, reverse=True)
  if feet[hi] > 0.03 and feet[hi] > 2 * feet[lo]:
    return f"leg:{hi}"
  if min(float(np.max(k - k[0])) for k in knee.values()) > 30:
    return "knees"
  if trunk_tilt.max() - trunk_tilt[0] > 20:
    return "waist"
  if nod.max() - nod[0] > 0.03:
    return "neck"
  hi, lo = sorted(hands, key=hands.get, reverse=True)
  if hands[lo] > 0.1 and hands[hi] < 2 * hands[lo]:
    return "arms:both"
  return f"arm:{hi}"


def measure(b: Body, item: qa.QAItem) -> str:
  """The tag the joints support for `item` (its template says what to measure)."""
  t = item.template
  if t.endswith("_cause"):
    return cause(b)
  if t in ("which_arm", "which_leg"):
    end, root = ("hand", "shoulder") if t == "which_arm" else ("foot", "hip")
    ex = {s: b.excursion(f"{s}_{end}", f"{s}_{root}") for s in ("left", "right")}
    return f"side:{max(ex, key=ex.get)}"
  if t == "hop_leg":  # the stance foot is the one that stays lowest
    low = {s: np.mean(b[f"{s}_foot"][:, 1]) for s in ("left", "right")}
    return f"side:{min(low, key=low.get)}"
  if t == "which_way":
    if "turn" in item.question:
      # Turning to one's left brings one's right side round to where one faced.
      right_end = b["right_hip"][-1] - b["left_hip"][-1]
      return "side:left" if right_end[2] > 0 else "side:right"
    head = b.rel("head", "spine_base")[:, 0]
    k = int(np.argmax(np.abs(head - head[0])))
    return "side:right" if head[k] > head[0] else "side:left"
  if t.endswith("_updown"):
    name = "head" if t == "head_updown" else None
    if name is None:
      side = "left" if "left" in item.question else "right"
      name = f"{side}_hand"
    y = b.raw[:, J[name]] @ b.world_up
    d = y - y[0]
    return "dir:up" if d.max() > -d.min() else "dir:down"
  if t == "foot_frontback":
    side = "left" if "left" in item.question else "right"
    f = b.rel(f"{side}_foot", "spine_base")
    d = f - f[0]
    k = int(np.argmax(np.linalg.norm(d, axis=-1)))
    return "dir:front" if d[k, 2] > 0 else "dir:back"
  if t == "count":
    q = item.question
    if "arm swing" in q or "leg swing" in q:
      side = "left" if "left" in q else "right"
      end, root = ("hand", "shoulder") if "arm" in q else ("ankle", "hip")
      fwd = b.rel(f"{side}_{end}", f"{side}_{root}")[:, 2]
      return f"count:{peaks(fwd)}"
    if "head" in q:
      fwd = b.rel("head", "neck")[:, 2]
      return f"count:{peaks(fwd)}"
    if "hop" in q:
      return f"count:{peaks(b.raw[:, J['spine_base']] @ b.world_up)}"
    if "clap" in q:
      gap = -np.linalg.norm(b["left_hand"] - b["right_hand"], axis=-1)
      return f"count:{peaks(gap)}"
    if "knee" in q:
      return f"count:{sum(peaks(b[f'{s}_knee'][:, 1]) for s in ('left', 'right'))}"
  if t == "march_first":
    first = {s: int(np.argmax(b[f"{s}_knee"][:, 1] - b[f"{s}_knee"][0, 1] > 0.05))
             for s in ("left", "right")}
    return f"first:{min(first, key=first.get)}"
  if t == "jump_order":
    root = b.raw[:, J["spine_base"]] @ b.world_up
    feet = np.minimum(*[(b.raw[:, J[f"{s}_foot"]] - b.raw[0, J[f"{s}_foot"]]) @ b.world_up
                        for s in ("left", "right")])
    crouch = int(np.argmax(root < root[0] - 0.02))
    takeoff = int(np.argmax(feet > 0.02))
    return "first:crouch" if crouch < takeoff else "first:takeoff"
  if t == "kick_order":
    side = "left" if "left" in item.options[0] else "right"
    knee = b[f"{side}_knee"][:, 1] - b[f"{side}_knee"][0, 1]
    lifted = int(np.argmax(knee > 0.5 * knee.max()))
    snap = int(np.argmax(b.rel(f"{side}_ankle", f"{side}_knee")[:, 2]))
    return "first:knee" if lifted < snap else "first:snap"
  raise AssertionError(f"no check for template {t}")


def _clips(per_class, knobs=None):
  for label in qa.QA_LABELS:
    for k in range(per_class):
      seed = 1000 + 37 * k
      rec = synthetic.generate_clip(label, seed, **(knobs or {}))
      items = qa.questions(label, rec.metadata["description"], clip_of_class=k)
      yield label, rec, items


@pytest.mark.parametrize("knobs", [None, dict(noise_std=0.0)], ids=["default_knobs", "clean"])
def test_every_answer_rederived_from_the_joints(knobs):
  checked = collections.Counter()
  for label, rec, items in _clips(4, knobs):
    assert items, synthetic.CLASS_NAMES[label]
    b = Body(rec.positions)
    for item in items:
      got = measure(b, item)
      assert got in item.tags, (synthetic.CLASS_NAMES[label], item.question, got, item.tags)
      assert item.tags.index(got) == item.answer, (
          synthetic.CLASS_NAMES[label], rec.metadata["seed"], item.question, item.options,
          f"joints say {got}, answer {item.answer_text!r}")
      checked[item.type] += 1
  assert set(checked) == set(qa.TYPES) and min(checked.values()) >= 20, checked


def test_answer_positions_balanced_per_class_and_template():
  for label in qa.QA_LABELS[:6]:
    rec = synthetic.generate_clip(label, 3)
    desc = rec.metadata["description"]
    per_template = collections.defaultdict(collections.Counter)
    for k in range(8):
      for t, item in enumerate(qa.questions(label, desc, clip_of_class=k)):
        per_template[t][item.answer] += 1
    for t, counts in per_template.items():
      k = len(qa.questions(label, desc, clip_of_class=0)[t].options)
      assert sorted(counts) == list(range(k)) and len(set(counts.values())) == 1, counts


def test_two_person_classes_have_no_questions_and_chance():
  for label in synthetic.TWO_PERSON_LABELS:
    assert label not in qa.QA_LABELS
  items = qa.questions("squat", synthetic.generate_clip("squat", 0).metadata["description"],
                       clip_of_class=0)
  assert qa.chance(items) == pytest.approx(np.mean([1 / len(i.options) for i in items]))


def test_option_list_without_the_answer_is_rejected():
  with pytest.raises(ValueError, match=r"clip 7: QA question 'Which arm moves\?': the answer "
                                       r"'the left arm' is not one of its options"):
    qa.make_item("spatial", "which_arm", "Which arm moves?", ["the right arm", "both arms"],
                 "the left arm", where="clip 7")
  with pytest.raises(ValueError, match="lacks \\['answer'\\]"):
    qa.item_from_json({"type": "spatial", "question": "q", "options": ["a", "b"]}, where="f:3")
  with pytest.raises(ValueError, match="repeats an option"):
    qa.make_item("spatial", "t", "q", ["a", "a"], "a")
  item = qa.make_item("temporal", "t", "q", ["x", "y", "z"], "z")
  assert qa.item_from_json(item.to_json()) == item
