"""The kinematic teacher names the parts that really move, in the order they start, and ends
with the true label; checked against joint displacement computed here from the raw files."""

import re

import numpy as np
import pytest

from skel_llm import skeleton, synthetic
from skel_llm.data.classnames import NTU120_CLASSES
from skel_llm.skeleton import topology as topology_lib
from skel_llm.teachers import kinematic
from skel_llm.render import camera

NTU_FILES = ("S001C001P001R001A001", "S001C001P001R001A005", "S001C001P001R001A011",
             "S001C003P008R002A058", "S002C001P003R001A003", "S003C001P015R001A034",
             "S004C002P003R001A017")
TOPO = topology_lib.get("ntu25")
WORDS = {p: kinematic.part_words(p) for p in TOPO.parts}


def _load(shared_data, name):
  rec = skeleton.load(str(shared_data / "real" / "ntu_skeleton" / f"{name}.skeleton"))
  return camera.place(rec.positions, "auto", TOPO, is_2d=rec.is_2d), NTU120_CLASSES[int(name[-3:]) - 1]


def _raw_peak(positions, person):
  """part -> largest mean distance of its joints from frame 0, no smoothing (numpy only)."""
  x = positions[:, person].astype(np.float64)
  out = {}
  for part, joints in TOPO.parts.items():
    out[part] = float(np.linalg.norm(x[:, joints] - x[:1, joints], axis=-1).mean(1).max())
  return out


def _named_in(text):
  """Body parts named in a piece of text (longest names first so 'right hand' != 'hand')."""
  return {p for p, w in WORDS.items() if re.search(rf"\b{w}\b", text)}


@pytest.mark.parametrize("name", NTU_FILES)
def test_names_the_parts_that_move_most(shared_data, name):
  pos, label = _load(shared_data, name)
  text = kinematic.rationale(pos, "ntu25", label)
  lines = [ln for ln in text.splitlines() if ln.strip()]
  assert lines[-1] == f"Label: {label}"
  persons = [p for p in range(pos.shape[1]) if np.any(pos[:, p] != 0)]
  summary = lines[0]
  chunks = summary.split(";")[1:] if len(persons) > 1 else [summary]
  assert len(chunks) == len(persons), summary
  peaks = {p: _raw_peak(pos, p) for p in persons}
  # Summary chunks come most-active person first.
  order = sorted(persons, key=lambda p: -max(peaks[p].values()))
  for p, chunk in zip(order, chunks):
    raw = peaks[p]
    top = max(raw, key=raw.get)
    named = _named_in(chunk)
    assert top in named, (name, p, top, raw, chunk)
    # Nothing named as a main mover is nearly still by the raw measure.
    for part in named:
      assert raw[part] >= 0.3 * raw[top], (name, part, raw, chunk)


def test_two_person_clip_relates_the_persons(shared_data):
  pos, label = _load(shared_data, "S001C003P008R002A058")  # handshaking
  text = kinematic.rationale(pos, "ntu25", label)
  rel = [ln for ln in text.splitlines() if "Between them" in ln]
  assert len(rel) == 1
  roots = pos[:, :, TOPO.root]
  start = np.linalg.norm(roots[0, 0] - roots[0, 1])
  assert f"{start:.1f} m" in rel[0] or "apart" in rel[0]
  # The two right hands meet in a handshake: the closest hand-to-body gap is under 15 cm.
  hands = pos[:, :, list(TOPO.parts["right_hand"])].mean(2)
  gap = min(np.linalg.norm(hands[:, 0][:, None] - pos[:, 1], axis=-1).min(),
            np.linalg.norm(hands[:, 1][:, None] - pos[:, 0], axis=-1).min())
  assert gap < 0.15
  assert "right hand reaches person" in rel[0]


def test_onset_order_follows_the_motion():
  """A hand-built clip: the left hand starts at frame 10, the right hand at frame 30."""
  rec = synthetic.generate_clip("squat", 0, num_frames=48, topology="ntu25")
  still = np.repeat(np.asarray(rec.positions[:1], np.float64), 60, axis=0)
  pos = still.copy()
  lh, rh = list(TOPO.parts["left_hand"]), list(TOPO.parts["right_hand"])
  ramp = lambda a, b: np.clip((np.arange(60) - a) / (b - a), 0, 1)[:, None, None]  # noqa: E731
  pos[:, 0, lh] += 0.5 * ramp(10, 20) * np.array([0.0, 1.0, 0.0])  # up 50 cm
  pos[:, 0, rh] += 0.3 * ramp(30, 40) * np.array([0.0, -1.0, 0.0])  # down 30 cm
  text = kinematic.rationale(pos.astype(np.float32), "ntu25", "squat")
  lines = text.splitlines()
  assert lines[1].startswith("1. The left hand leads"), text
  assert "50 cm up" in lines[1]
  assert lines[2].startswith("2. The right hand follows"), text
  assert "30 cm down" in lines[2]


def test_deterministic_and_not_the_generators_text():
  for cls in ("squat", "kick right leg", "handshake", "wave left hand"):
    rec = synthetic.generate_clip(cls, 3, num_frames=48, topology="ntu25")
    a = kinematic.rationale(rec.positions, "ntu25", cls)
    assert a == kinematic.rationale(rec.positions.copy(), "ntu25", cls)
    desc = rec.metadata["description"].splitlines()[:-1]
    ours = a.splitlines()[:-1]
    assert not set(desc) & set(ours)
    # No 5-word run of the generator's text appears in ours.
    grams = lambda t: {tuple(t.split()[i:i + 5]) for i in range(len(t.split()) - 4)}  # noqa: E731
    assert not grams(" ".join(desc)) & grams(" ".join(ours)), cls


def test_bad_input():
  with pytest.raises(ValueError, match="joints but topology ntu25 has 25"):
    kinematic.rationale(np.ones((10, 1, 22, 3), np.float32), "ntu25", "x")
  with pytest.raises(ValueError, match="every joint of every person is zero"):
    kinematic.rationale(np.zeros((10, 1, 25, 3), np.float32), "ntu25", "x")


@pytest.mark.parametrize("rel", ["pku_mmd/A10N08-L.txt", "humanml3d/new_joints/012314.npy"])
def test_other_formats_name_their_top_mover(shared_data, rel):
  """PKU-MMD (Kinect v2, two persons) and HumanML3D (SMPL-22, walking): a person who travels
  is described relative to the root, so the check measures the limbs the same way."""
  rec = skeleton.load(str(shared_data / "real" / rel))
  topo = topology_lib.get(rec.format)
  pos = camera.place(rec.positions, "auto", topo, is_2d=rec.is_2d)
  text = kinematic.rationale(pos, topo.name, "some action")
  assert text.splitlines()[-1] == "Label: some action"
  persons = [p for p in range(pos.shape[1]) if np.any(pos[:, p] != 0)]
  chunks = text.splitlines()[0].split(";")[1:] if len(persons) > 1 else [text.splitlines()[0]]
  for chunk in chunks:
    p = persons[int(re.search(r"person (\d)", chunk).group(1)) - 1] if len(persons) > 1 else 0
    x = pos[:, p].astype(np.float64)
    if "travels as a whole" in chunk:
      x = x - x[:, topo.root:topo.root + 1]
    raw = {k: float(np.linalg.norm(x[:, list(j)] - x[:1, list(j)], axis=-1).mean(1).max())
           for k, j in topo.parts.items()}
    assert max(raw, key=raw.get) in _named_in(chunk), (chunk, raw)
