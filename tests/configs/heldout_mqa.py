"""The tests' short trained run: `configs/distill.py:smoke` shortened to MQA over 4 synthetic
classes, a tiny model from scratch and the demo's narrow view/placement ranges, 300 steps.

Trained once per test session (`heldout_run` in tests/conftest.py) and read by
tests/eval/test_recognition.py and tests/serving/test_predictor.py; `python -m skel_llm.predict
--config=tests/configs/heldout_mqa.py` reads its checkpoints.
"""

import pathlib

import ml_collections

from skel_llm.eval import options
from skel_llm.train import defaults

CLASSES = ("squat", "jump", "raise left arm", "bow")


def get_config(arg=None):
  del arg
  c = defaults.load_config(pathlib.Path(__file__).resolve().parents[2] / "configs" / "distill.py",
                           "smoke")
  c.data.task = "mqa"
  c.data.eval_task = "mqa"
  c.data.classes = CLASSES
  c.data.synthetic_knobs = dict(defaults.DEMO_KNOBS)
  c.data.num_train_clips = 4096
  c.data.max_len = 224
  c.render.image_size = 32
  # 32 px frames: tiles of 8 px halve the step on CPU, no pair dropped (benchmarks/train_step.py
  # --tiles 16,8: the demo's step at each tile, and the pairs its frames need and drop).
  c.render.tile = 8
  c.model.patch_size = 8
  c.render.num_frames = 6
  c.model.vision_width, c.model.vision_layers, c.model.vision_mlp = 64, 2, 128
  c.model.text_width, c.model.text_layers, c.model.text_mlp = 128, 2, 256
  c.total_steps = 300
  c.log_every = 25
  c.checkpoint.every_steps = 150
  c.optim.lr = 3e-3
  n = 32
  c.evals = ml_collections.ConfigDict(dict(
      heldout=options.evaluator("recognition", method="decode", num_clips=n, every_steps=150,
                                max_new_tokens=10),
      heldout_score=options.evaluator("recognition", method="score", num_clips=n,
                                      every_steps=150)))
  # Levels far from the clean clips on all 32 held-out clips: with 16 clips and dropout 0.5
  # (joints collapsed onto their parents keep much of the motion) the curve rose on an AVX2
  # CPU (62.5 -> 65.6 %); dropout 0.9 fell there from 62.5 to 37.5 % (2026-12-04).
  c.evals.robustness = options.evaluator("robustness", of="heldout_score", num_clips=n,
                                         dropout=(0.9,), noise_cm=(10.0,), seeds=2)
  c.export.renderer = True
  return c
