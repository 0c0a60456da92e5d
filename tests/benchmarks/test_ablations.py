"""Pins benchmarks/ablations.py: each row's stage commands, a real (smoke) row trained,
resumed (finished stages skipped) and tabulated from its result.json."""

import importlib.util
import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ablations():
  spec = importlib.util.spec_from_file_location("ablations", REPO / "benchmarks" / "ablations.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules["ablations"] = module  # its dataclasses look their module up
  spec.loader.exec_module(module)
  return module


def _flags(argv):
  return dict(a[2:].split("=", 1) for a in argv if a.startswith("--"))


def test_stage_commands(ablations, tmp_path):
  rows = ablations.ROWS
  cmds = ablations.stage_commands(rows["velocity_1-4"], 2, tmp_path, "demo")
  assert [c[0] for c in cmds] == ["warmup", "disc_ft", "distill", "refine"]
  for i, (stage, workdir, argv) in enumerate(cmds):
    f = _flags(argv)
    assert workdir == tmp_path / "velocity_1-4" / "seed2" / stage
    assert f["config.seed"] == "2" and f["config.render.kind"] == "velocity"
    assert "renderer" not in f["config.trainable"]  # a fixed renderer trains nothing
    assert f.get("config.init_from") == (str(cmds[i - 1][1]) if i else None)
  f = _flags(ablations.stage_commands(rows["draction_1+4"], 0, tmp_path, "demo")[0][2])
  assert "config.trainable" not in f and "config.render.kind" not in f
  for _, _, argv in ablations.stage_commands(rows["draction_1+4"], 0, tmp_path, "demo",
                                             settings=("evals.heldout.every_steps=0",)):
    assert _flags(argv)["config.evals.heldout.every_steps"] == "0"
  with pytest.raises(SystemExit, match="--set 'heldout': expected KEY=VALUE"):
    ablations.main([f"--root={tmp_path}", "--set=heldout", "--dry_run"])
  warm, refine = ablations.stage_commands(rows["blend_uniform"], 0, tmp_path, "demo")
  assert _flags(warm[2])["config"].endswith("warmup.py:demo")
  assert _flags(refine[2])["config"].endswith("refine.py:demo,crossformat")
  assert _flags(refine[2])["config.evals.heldout_smpl22.data.placement"] == "humanml3d_front"
  f = _flags(ablations.stage_commands(rows["persons_overlay"], 0, tmp_path, "demo")[0][2])
  assert "'handshake', 'push')" in f["config.data.classes"]
  assert f["config.render.persons"] == "overlay"
  assert [r.name for r in ablations.select("stages")] == [
      "draction_1+4", "draction_1-4", "no_disc_ft", "no_cr_distill"]
  with pytest.raises(SystemExit, match="unknown row or group"):
    ablations.select("renderer,nope")


def test_a_row_trains_resumes_and_is_tabulated(ablations, tmp_path, capsys):
  # One stage (a real smoke run, fixed stick renderer) keeps the test short; the chaining of
  # stages is pinned by test_stage_commands.
  row = ablations.Row("stick_1", ("test",), ("warmup",), "-", (("render.kind", "stick"),))
  ablations.run_row(row, 0, tmp_path, "smoke", steps=2)
  assert "finished, skipped" not in capsys.readouterr().out
  assert (tmp_path / "stick_1" / "seed0" / "warmup" / "result.json").exists()
  walls = json.loads((tmp_path / "stick_1" / "seed0" / "walls.json").read_text())
  assert set(walls) == {"warmup"} and walls["warmup"] > 0
  ablations.run_row(row, 0, tmp_path, "smoke", steps=2)  # resumed: nothing to train
  assert capsys.readouterr().out.count("finished, skipped") == 1
  evals = json.loads((tmp_path / "stick_1" / "seed0" / "warmup" / "result.json").read_text())
  value = 100.0 * evals["evals"]["heldout"]["authors"]
  line = ablations.table([row], [0, 1], tmp_path).splitlines()[-1]
  assert line.startswith("| stick_1 | 1 |") and f"held-out {value:.1f} (1 seed)" in line
