"""Pins skel_llm/eval/registry.py + options.py: config.evals mistakes fail before compiling,
each naming the evaluator and the option."""

import subprocess
import sys

import ml_collections
import pytest

from skel_llm.eval import options, registry
from skel_llm.train import defaults, validate


def _config(**evals):
  c = defaults.base("smoke")
  c.evals = ml_collections.ConfigDict(evals)
  return c


@pytest.mark.parametrize("evals,message", [
    (dict(x=dict(type="bleu")), r"config.evals.x.type 'bleu' is unknown; known: \['captioning', 'qa', 'recognition'"),
    (dict(x=options.evaluator("recognition") | dict(beam=4)),
     r"config.evals.x: unknown option\(s\) \['beam'\] for type 'recognition'"),
    (dict(x=options.evaluator("recognition", data=dict(source="tfds", tfds_name="ntu_rgbd/"
                                                       "ntu60_xsub", protocol="pku_mmd_46_5"))),
     r"config.evals.x.data.protocol 'pku_mmd_46_5' is a pku_mmd split, but the evaluator reads "
     r"'ntu_rgbd/ntu60_xsub' \(ntu60\)"),
    (dict(x=options.evaluator("recognition", data=dict(protocol="ntu60_55_5"))),
     r"config.evals.x.data.protocol 'ntu60_55_5' needs a TFDS source"),
    (dict(x=options.evaluator("recognition", data=dict(protocol="ntu60_1_1"))),
     r"config.evals.x.data.protocol 'ntu60_1_1' is unknown"),
    # Another topology than the renderer's is a cross-format evaluation; an unknown one is not.
    (dict(x=options.evaluator("recognition", data=dict(topology="coco18"))),
     r"config.evals.x.data.topology 'coco18' is unknown"),
    (dict(x=options.evaluator("recognition", data=dict(crossformat="ntu_to_ucla"))),
     r"cross-format protocol 'ntu_to_ucla' is unknown; known: \['bvh_folder'"),
    (dict(x=options.evaluator("recognition", every_steps=-1)), r"every_steps must be >= 0"),
    (dict(x=options.evaluator("recognition") | dict(data=dict(split="test"))),
     r"config.evals.x.data: unknown key\(s\) \['split'\]"),
])
def test_static_mistakes_are_named(evals, message):
  with pytest.raises(ValueError, match=message):
    validate.check_config(_config(**evals))


def test_mistakes_found_while_building_are_named_before_the_step_compiles():
  from skel_llm.train import trainer
  cases = [
      (dict(r=options.evaluator("robustness", of="nope")),
       r"config.evals.r.of 'nope' must name a recognition evaluator"),
      (dict(x=options.evaluator("recognition", method="beam")),
       r"config.evals.x.method 'beam' is unknown"),
      (dict(x=options.evaluator("recognition", prompt="yesno")),
       r"config.evals.x.prompt 'yesno': recognition asks with 'mqa' or 'reason'"),
      (dict(x=options.evaluator("recognition", batch_size=3)),
       r"config.evals.x.batch_size 3 is not divisible by the data-parallel size 2"),
  ]
  import jax
  for evals, message in cases:
    c = _config(**evals)
    c.mesh.data = 2
    run = trainer.Run(c, devices=jax.devices()[:2])
    run.init_state()
    with pytest.raises(ValueError, match=message):
      run.evaluators()
    assert run._step_fn is None  # nothing compiled


def test_every_option_can_be_overridden_from_the_command_line(tmp_path):
  """ml_collections only overrides existing keys: `options.evaluator` spells all of them."""
  c = defaults.base(None)
  for name, ev in c.evals.items():
    assert set(ev) == set(options.options(ev.type)), name
    assert registry.with_defaults(name, ev).to_dict() == ev.to_dict()
  out = subprocess.run(
      [sys.executable, "-m", "skel_llm.main", "--config=configs/distill.py:smoke",
       f"--workdir={tmp_path}", "--config.evals.heldout.data.protocol=nope",
       "--config.total_steps=1"], capture_output=True, text=True, timeout=600)
  assert out.returncode == 2
  assert "config.evals.heldout.data.protocol 'nope' is unknown" in out.stderr, out.stderr[-2000:]
