"""Pins skel_llm/eval/recognition.py and the trainer end to end: a short demo visibly learns.

A shortened `configs/distill.py` run (MQA on 4 synthetic classes, tiny model from scratch)
trains in-process and is evaluated on held-out clips (generator seeds never used in
training) by generating the answer and reading its `Label:` line.
"""

import importlib.util
import json
import pathlib

import jax

from skel_llm.train import trainer

REPO = pathlib.Path(__file__).resolve().parents[2]
CLASSES = ("raise left arm", "raise right leg", "squat", "turn left")


def _config():
  spec = importlib.util.spec_from_file_location("distill_cfg", REPO / "configs" / "distill.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config("smoke")
  c.data.task = "mqa"
  c.data.eval_task = "mqa"
  c.data.classes = CLASSES
  c.data.num_train_clips = 256
  c.data.num_eval_clips = 32
  c.data.max_len = 224
  c.render.image_size = 32
  c.model.patch_size = 8
  c.render.num_frames = 6
  c.total_steps = 80
  c.log_every = 20
  c.checkpoint.every_steps = 80
  c.optim.lr = 3e-3
  c.eval.num_clips = 32
  c.eval.max_new_tokens = 10
  return c


def test_short_demo_learns_far_above_chance(tmp_path):
  result = trainer.train_and_evaluate(_config(), str(tmp_path), devices=jax.devices()[:1])
  ev = result["eval"]
  assert ev["num_clips"] == 32 and ev["num_classes"] == 4 and ev["chance"] == 0.25
  assert ev["accuracy"] >= 0.75, ev
  saved = json.loads((tmp_path / "result.json").read_text())
  assert saved["eval"]["accuracy"] == ev["accuracy"]
  assert (tmp_path / "frames_start.png").stat().st_size > 0
  assert (tmp_path / "frames_end.png").stat().st_size > 0
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
