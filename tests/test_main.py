"""Pins skel_llm/main.py and train/validate.py: bad configuration fails early, naming the fix."""

import os
import pathlib
import subprocess
import sys

import pytest

from skel_llm.train import defaults, trainer

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(name="distill.py", arg="smoke"):
  return defaults.load_config(REPO / "configs" / name, arg)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update({"batch_size": 6}) or c.mesh.update({"data": 4, "fsdp": 2}),
     "config.batch_size 6 is not divisible by the data-parallel size 8"),
    (lambda c: c.mesh.update({"data": 3}), "needs 3 devices but 8 are in use"),
    (lambda c: c.mesh.update({"pipeline": 2}), "config.mesh has unknown axes ['pipeline']"),
    (lambda c: c.data.update({"source": "kinetics"}), "config.data.source 'kinetics' is unknown"),
    (lambda c: c.data.update({"task": "caption"}), "config.data.task 'caption' is unknown"),
    (lambda c: c.update({"init_from": "/nonexistent/warmup"}),
     "folder /nonexistent/warmup does not exist; it must be the previous stage's --workdir"),
    (lambda c: c.update({"init_from": "hf:/nonexistent/InternVL3-8B"}),
     "it must be a Hugging Face model folder"),
    (lambda c: c.data.update({"topology": "kinect99"}), "config.data.topology 'kinect99' is unknown"),
    (lambda c: c.render.update({"topology": "coco17"}),
     "config.render.topology 'coco17' differs from config.data.topology 'ntu25'"),
    (lambda c: c.data.update({"protocol": "ntu60_99_1"}), "config.data.protocol 'ntu60_99_1' is unknown"),
    (lambda c: c.data.update({"protocol": "ntu60_55_5"}),
     "with config.data.source='synthetic' leave it empty"),
    (lambda c: c.text.update({"template": "llama3"}), "config.text.template 'llama3' is unknown"),
    (lambda c: c.update({"sharding_rules": (("embed", "model"),)}),
     "unknown mesh axes ['model']"),
    (lambda c: c.update({"trainable": (r"nothing/matches",)}),
     "config.trainable ['nothing/matches'] matches no parameter"),
    (lambda c: c.render.update({"init": "/nonexistent/draction.safetensors"}),
     "config.render.init /nonexistent/draction.safetensors does not exist"),
])
def test_bad_config_is_rejected_before_compiling(change, message):
  c = _config()
  change(c)
  with pytest.raises((ValueError, FileNotFoundError)) as err:
    trainer.Run(c)
  assert message in str(err.value)


def test_presets_and_unknown_preset():
  paper = _config("refine.py", "paper")
  assert paper.model.preset == "internvl3_8b" and paper.render.image_size == 448
  assert paper.optim.lr == 2e-5 and paper.epochs == 3.0 and paper.mesh.tensor == 2
  assert paper.trainable == (r"mllm/multi_modal_projector/.*", r"mllm/.*/lora_[ab]")
  assert _config("warmup.py", "paper").trainable == (r"renderer/.*",
                                                     r"mllm/multi_modal_projector/.*")
  with pytest.raises(ValueError, match="unknown config preset 'huge'"):
    _config("warmup.py", "huge")


def test_command_line_rejects_an_unknown_key(tmp_path):
  env = dict(os.environ, XLA_FLAGS="")
  out = subprocess.run(
      [sys.executable, "-m", "skel_llm.main", "--config=configs/distill.py:smoke",
       f"--workdir={tmp_path}", "--config.optim.learning_rate=0.1"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert "learning_rate" in out.stderr
  assert not (tmp_path / "checkpoints").exists()


def test_load_config_names_a_missing_file():
  with pytest.raises(FileNotFoundError, match="config file .*nope.py does not exist"):
    defaults.load_config(REPO / "configs" / "nope.py")
