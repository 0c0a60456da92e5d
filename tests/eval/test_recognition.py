"""Pins skel_llm/eval/recognition.py and the trainer end to end on a short run.

A shortened `configs/distill.py` run (MQA over 4 synthetic classes, a tiny model from scratch,
the demo's narrow view/placement ranges) trains in-process, then `recognition.evaluate` renders
clips the model never saw (other generator seeds), generates the answer with the KV cache, reads
its `Label:` line and scores it against the truth: the model must generalise far above the 25 %
chance. A second check runs the memorisation setting (`eval_seed_offset=0`, 8 training clips).
"""

import json
import pathlib

import jax

from skel_llm.train import defaults, trainer

REPO = pathlib.Path(__file__).resolve().parents[2]
CLASSES = ("squat", "jump", "raise left arm", "bow")


def _config(held_out: bool):
  c = defaults.load_config(REPO / "configs" / "distill.py", "smoke")
  c.data.task = "mqa"
  c.data.eval_task = "mqa"
  c.data.classes = CLASSES
  if held_out:
    c.data.synthetic_knobs = dict(defaults.DEMO_KNOBS)
    c.data.num_train_clips, c.data.num_eval_clips = 4096, 32
  else:
    c.data.num_train_clips, c.data.num_eval_clips, c.data.eval_seed_offset = 8, 8, 0
  c.data.max_len = 224
  c.render.image_size = 32
  c.model.patch_size = 8
  c.render.num_frames = 6
  c.model.vision_width, c.model.vision_layers, c.model.vision_mlp = 64, 2, 128
  c.model.text_width, c.model.text_layers, c.model.text_mlp = 128, 2, 256
  c.total_steps = 300 if held_out else 100
  c.log_every = 25
  c.checkpoint.every_steps = 100
  c.optim.lr = 3e-3
  c.eval.num_clips = c.data.num_eval_clips
  c.eval.max_new_tokens = 10
  c.export.renderer = True
  return c


def test_short_run_recognises_held_out_clips_far_above_chance(tmp_path):
  result = trainer.train_and_evaluate(_config(held_out=True), str(tmp_path),
                                      devices=jax.devices()[:1])
  ev = result["eval"]
  assert ev["num_clips"] == 32 and ev["num_classes"] == 4 and ev["chance"] == 0.25
  assert ev["accuracy"] >= 0.5, ev  # twice chance, on clips never trained on
  _check_outputs(tmp_path, ev, 32)


def test_short_run_memorises_its_clips(tmp_path):
  result = trainer.train_and_evaluate(_config(held_out=False), str(tmp_path),
                                      devices=jax.devices()[:1])
  ev = result["eval"]
  assert ev["num_clips"] == 8 and ev["accuracy"] >= 0.75, ev
  assert result["train"]["loss"] < 0.1, result["train"]
  _check_outputs(tmp_path, ev, 8)


def _check_outputs(tmp_path, ev, num_clips):
  saved = json.loads((tmp_path / "result.json").read_text())
  assert saved["eval"]["accuracy"] == ev["accuracy"]
  replies = [json.loads(line) for line in open(tmp_path / "eval_predictions.jsonl")]
  assert len(replies) == num_clips and all(r["reply"].startswith("Label: ") for r in replies)
  assert (tmp_path / "frames_start.png").stat().st_size > 0
  assert (tmp_path / "frames_end.png").stat().st_size > 0
  assert (tmp_path / "export" / "draction.safetensors").stat().st_size > 0
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
