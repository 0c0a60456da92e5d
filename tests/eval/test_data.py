"""Pins skel_llm/eval/data.py: evaluator data overrides and the robustness corruptions."""

import numpy as np
import pytest

from skel_llm.data import sources
from skel_llm.eval import data as data_lib
from skel_llm.skeleton import topology
from skel_llm.train import defaults


def _clips(rng, b=4, t=30, p=2, j=25, frames=(30, 20, 30, 10)):
  pos = rng.normal(0, 0.4, (b, t, p, j, 3)).astype(np.float32) + np.array([0, 0, 3.0], np.float32)
  pos[1, :, 1] = 0.0  # clip 1 has one person
  for i, n in enumerate(frames):
    pos[i, n:] = 0.0  # zero padding after the real frames
  return pos, np.asarray(frames, np.int32)


def test_parents_form_a_tree_rooted_at_the_topology_root():
  for name in ("ntu25", "kinect20", "coco17", "smpl22"):
    topo = topology.get(name)
    parent = data_lib.parents(name)
    assert parent[topo.root] == topo.root
    bones = {frozenset(b) for b in topo.bones}
    for j in range(len(topo.joint_names)):
      if j != topo.root:
        assert frozenset((j, int(parent[j]))) in bones, (name, j)
      k, hops = j, 0
      while k != topo.root:  # every joint reaches the root
        k, hops = int(parent[k]), hops + 1
        assert hops <= len(parent)


def test_noise_has_the_asked_standard_deviation_on_present_joints_only():
  rng = np.random.default_rng(0)
  pos, frames = _clips(rng)
  out = data_lib.corrupt(pos, frames, "noise", 5.0, np.random.default_rng(1),
                         data_lib.parents("ntu25"))
  diff = out - pos
  real = np.zeros(pos.shape[:3], bool)
  for i, n in enumerate(frames):
    real[i, :n] = True
  real[1, :, 1] = False
  assert np.all(diff[~real] == 0)  # padding frames and the absent person stay zero
  assert np.std(diff[real]) == pytest.approx(0.05, rel=0.03)  # 5 cm in metres
  assert abs(np.mean(diff[real])) < 2e-3


def test_dropout_moves_the_asked_fraction_of_joints_onto_their_parents():
  rng = np.random.default_rng(0)
  pos, frames = _clips(rng)
  parent = data_lib.parents("ntu25")
  out = data_lib.corrupt(pos, frames, "dropout", 0.3, np.random.default_rng(2), parent)
  moved = np.any(out != pos, axis=-1)  # [B, T, P, J]
  present = np.zeros(pos.shape[:3], bool)
  for i, n in enumerate(frames):
    present[i, :n] = True
  present[1, :, 1] = False
  assert not moved[~present].any()
  root = topology.get("ntu25").root
  assert not moved[..., root].any()
  frac = moved[present].mean() / (24 / 25)  # the root never moves
  assert frac == pytest.approx(0.3, abs=0.03)
  # A moved joint sits where its parent ended up (its parent may have moved too).
  b, t, p, j = np.nonzero(moved)
  np.testing.assert_array_equal(out[b, t, p, j], out[b, t, p, parent[j]])
  # Same generator seed, same corruption; another seed, another one.
  again = data_lib.corrupt(pos, frames, "dropout", 0.3, np.random.default_rng(2), parent)
  other = data_lib.corrupt(pos, frames, "dropout", 0.3, np.random.default_rng(3), parent)
  np.testing.assert_array_equal(out, again)
  assert not np.array_equal(out, other)
  with pytest.raises(ValueError, match="corruption 'blur' is unknown"):
    data_lib.corrupt(pos, frames, "blur", 0.1, np.random.default_rng(0), parent)


def test_data_overrides_keep_the_runs_values_unless_given():
  c = defaults.base("smoke")
  d = data_lib.data_config(c.data, {"source": "", "eval_seed_offset": -1, "topology": ""},
                           num_clips=12, prompt="reason")
  assert d.source == c.data.source and d.eval_seed_offset == c.data.eval_seed_offset
  assert d.eval_task == "reason" and d.num_eval_clips == 12
  d = data_lib.data_config(c.data, {"eval_seed_offset": 0}, num_clips=4, prompt="mqa")
  assert d.eval_seed_offset == 0 and c.data.eval_seed_offset != 0  # the run's config untouched
  with pytest.raises(ValueError, match="evaluator data option 'split' is unknown"):
    data_lib.data_config(c.data, {"split": "test"}, num_clips=4, prompt="mqa")


def test_class_split_seen_evaluates_a_zero_shot_run_on_its_training_classes():
  seen, unseen = ("squat", "jump", "bow"), ("raise left leg", "swing right arm")
  c = defaults.base("smoke")
  with c.data.unlocked():
    c.data.classes, c.data.eval_classes = seen, unseen
  d = data_lib.data_config(c.data, {"class_split": "seen"}, num_clips=12, prompt="mqa")
  assert d.eval_classes == () and c.data.eval_classes == unseen  # the run's config untouched
  assert "class_split" not in d
  train = sources.make_source(c.data, "train")
  ev = sources.make_source(d, "eval")
  names = ev.class_names
  assert [names[i] for i in ev.candidate_ids] == list(seen)
  assert {names[ev[i].label] for i in range(len(ev))} == set(seen)
  # Held-out clips: other generator seeds than the training split's.
  train_first = {tuple(np.asarray(train[i].positions).ravel()[:6]) for i in range(len(train))}
  assert not any(tuple(np.asarray(ev[i].positions).ravel()[:6]) in train_first
                 for i in range(len(ev)))
  # "" keeps the run's unseen classes.
  kept = data_lib.data_config(c.data, {"class_split": ""}, num_clips=12, prompt="mqa")
  assert kept.eval_classes == unseen
  with pytest.raises(ValueError, match=r"class_split='unseen': expected one of \('', 'seen'\)"):
    data_lib.data_config(c.data, {"class_split": "unseen"}, num_clips=4, prompt="mqa")
  with pytest.raises(ValueError, match="config.data.eval_classes is empty"):
    data_lib.data_config(defaults.base("smoke").data, {"class_split": "seen"}, num_clips=4,
                         prompt="mqa")
  with c.data.unlocked():
    c.data.source = "tfds"
  with pytest.raises(ValueError, match="needs config.data.source 'synthetic'"):
    data_lib.data_config(c.data, {"class_split": "seen"}, num_clips=4, prompt="mqa")
