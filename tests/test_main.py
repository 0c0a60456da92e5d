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
    (lambda c: c.data.update({"task": "story"}), "config.data.task 'story' is unknown"),
    (lambda c: c.update({"init_from": "/nonexistent/warmup"}),
     "folder /nonexistent/warmup does not exist; it must be the previous stage's --workdir"),
    (lambda c: c.update({"init_from": "hf:/nonexistent/InternVL3-8B"}),
     "it must be a Hugging Face model folder"),
    (lambda c: c.data.update({"topology": "kinect99"}), "config.data.topology 'kinect99' is unknown"),
    (lambda c: c.render.update({"topology": "coco17"}),
     "config.render.topology 'coco17' differs from config.data.topology 'ntu25'"),
    (lambda c: c.data.update({"protocol": "ntu60_99_1"}), "config.data.protocol 'ntu60_99_1' is unknown"),
    (lambda c: c.data.update({"placement": "kinnect"}), "config.data.placement 'kinnect' is unknown"),
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
  small = _config("distill.py", "paper_1b")
  assert small.model.preset == "internvl3_1b" and small.text.tokenizer == "/models/InternVL3-1B-hf"
  assert small.trainable == _config("distill.py", "paper").trainable
  assert _config("warmup.py", "paper_2b").model.preset == "internvl3_2b"
  with pytest.raises(ValueError, match="unknown config preset 'huge'"):
    _config("warmup.py", "huge")
  cross = _config("distill.py", "crossformat")  # the run's evaluators, each on 3 more formats
  assert sorted(cross.evals) == sorted(
      [f"{n}{s}" for n in ("heldout", "heldout_score") for s in
       ("", "_kinect20", "_smpl22", "_coco17")])
  assert cross.evals.heldout_smpl22.data.topology == "smpl22"
  assert cross.evals.heldout_smpl22.method == cross.evals.heldout.method == "decode"


def _main(*args, cwd=REPO, timeout=600):
  env = dict(os.environ, XLA_FLAGS="")
  return subprocess.run([sys.executable, "-m", "skel_llm.main", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def test_command_line_rejects_an_unknown_key(tmp_path):
  out = _main("--config=configs/distill.py:smoke", f"--workdir={tmp_path}",
              "--config.optim.learning_rate=0.1")
  assert out.returncode == 2
  assert "learning_rate" in out.stderr
  assert not (tmp_path / "checkpoints").exists()


# Each mistake a newcomer made (issue 13): exit code 2 and one stderr line naming the flag, what
# is wrong and the fix; none leaves the workdir behind. These fail before jax is imported.
@pytest.mark.parametrize("flags, line", [
    (["--config=configs/nonexistent.py"],
     "[skel_llm] error: --config=configs/nonexistent.py: config file configs/nonexistent.py does "
     f"not exist; the configs are disc_ft.py, distill.py, refine.py, warmup.py in {REPO / 'configs'}"),
    (["--config=configs/distil.py"],
     f"did you mean {REPO / 'configs' / 'distill.py'}?"),
    (["--config=configs/distill.py", "--config.bach_size=16"],
     "[skel_llm] error: --config.bach_size=16: config has no key 'bach_size'; did you mean "
     "--config.batch_size?"),
    (["--config=configs/distill.py", "--config.xxx=1"],
     "[skel_llm] error: --config.xxx=1: config has no key 'xxx'; config has the keys batch_size, "
     "checkpoint, data,"),
    (["--config", "configs/distill.py", "--config.data.tsk=mqa"],
     "[skel_llm] error: --config.data.tsk=mqa: config.data has no key 'tsk'; did you mean "
     "--config.data.task?"),
    (["--config=configs/distill.py:huge"],
     "[skel_llm] error: --config=configs/distill.py:huge: unknown config preset 'huge'; known: "
     "demo (default), paper, paper_1b, paper_2b, smoke, multitask, crossformat, mixed, "
     "demo_pretrained"),
    (["--config=configs/distill.py", "--config.mesh.data.x=2"],
     "[skel_llm] error: --config.mesh.data.x=2: config.mesh.data is a value, not a group"),
    (["--config=configs/distill.py", "--config.batch_size=abc"],
     "[skel_llm] error: flag --config.batch_size=abc: invalid literal for int() with base 10: "
     "'abc'"),
    (["--config=configs/distill.py", "--workdr=/tmp/x"],
     "[skel_llm] error: Unknown command line flag 'workdr'. Did you mean: workdir ?"),
])
def test_config_mistakes_give_one_line_and_exit_2(tmp_path, flags, line):
  workdir = tmp_path / "run"
  out = _main(*flags, f"--workdir={workdir}", timeout=120)
  assert out.returncode == 2, out.stderr
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and line in lines[0], out.stderr
  assert "Traceback" not in out.stderr and out.stdout == ""
  assert not workdir.exists()


def test_invalid_value_after_loading_leaves_no_workdir(tmp_path):
  workdir = tmp_path / "run"
  out = _main("--config=configs/distill.py:smoke", f"--workdir={workdir}",
              "--config.data.task=foo", timeout=300)
  assert out.returncode == 2
  assert out.stderr.strip().splitlines()[-1] == (
      "[skel_llm] error: config.data.task 'foo' is unknown; use one of ('mqa', 'yesno', 'reason', "
      "'caption', 'qa'), or a mixture 'task:weight,task:weight'")
  assert "Traceback" not in out.stderr
  assert not workdir.exists()
  # A workdir that existed before the failed start is the user's: it stays.
  workdir.mkdir()
  assert _main("--config=configs/distill.py:smoke", f"--workdir={workdir}",
               "--config.data.task=foo", timeout=300).returncode == 2
  assert workdir.is_dir()


_NO_TORCH = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = ['skel_llm.main'] + "
             "sys.argv[1:]; runpy.run_module('skel_llm.main', run_name='__main__')")
_TORCH_ADVICE = "PyTorch was not found"


def test_main_job_without_torch_prints_no_torch_advice(tmp_path):
  """A user installs requirements.txt only (no PyTorch); transformers would advise about it."""
  env = dict(os.environ, XLA_FLAGS="")
  env.pop("TRANSFORMERS_NO_ADVISORY_WARNINGS", None)
  # Control: with torch hidden this way, a plain transformers import does print the advice,
  # so its absence below is skel_llm's doing.
  control = subprocess.run(
      [sys.executable, "-c", "import sys; sys.modules['torch'] = None; import transformers"],
      env=env, capture_output=True, text=True, timeout=300)
  assert _TORCH_ADVICE in control.stderr
  out = subprocess.run(
      [sys.executable, "-c", _NO_TORCH, "--config=configs/distill.py:smoke",
       f"--workdir={tmp_path / 'run'}", "--config.total_steps=1", "--config.evals.heldout.num_clips=0",
       "--config.export.renderer=False"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert _TORCH_ADVICE not in out.stderr
  assert (tmp_path / "run" / "result.json").is_file()


def test_load_config_names_a_missing_file():
  with pytest.raises(FileNotFoundError, match="config file .*nope.py does not exist"):
    defaults.load_config(REPO / "configs" / "nope.py")
