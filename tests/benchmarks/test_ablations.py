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
    assert workdir.parent == tmp_path / "_stages" and workdir.name.startswith(stage + "-")
    assert _flags(argv)["workdir"] == str(workdir)
    assert f["config.seed"] == "2" and f["config.render.kind"] == "velocity"
    assert "renderer" not in f["config.trainable"]  # a fixed renderer trains nothing
    assert f.get("config.init_from") == (str(cmds[i - 1][1]) if i else None)
  # Equal commands share a workdir: the DrAction rows' warm-up per seed, not the next stages
  # (their starting points or stage lists differ), nor other seeds or renderers.
  def dirs(name, seed=0):
    return [c[1] for c in ablations.stage_commands(rows[name], seed, tmp_path, "demo")]
  d14, d1234, nodisc = dirs("draction_1+4"), dirs("draction_1-4"), dirs("no_disc_ft")
  assert d14[0] == d1234[0] == nodisc[0] == dirs("no_cr_distill")[0]
  assert d14[1] != d1234[3] and nodisc[1] != d1234[2] and nodisc[2] != d1234[3]
  assert dirs("draction_1+4", 1)[0] != d14[0] and dirs("velocity_1+4")[0] != d14[0]
  assert dirs("no_cr_distill")[1] == d1234[1]  # warm-up then Disc-FT: the same two stages
  moved = [c[1] for c in ablations.stage_commands(rows["draction_1-4"], 0, tmp_path / "m", "demo")]
  assert [d.name for d in moved] == [d.name for d in d1234]  # ROOT is not in the digest
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
  # --rows keeps the order it is given; a row named again (here inside "stages") runs once.
  assert [r.name for r in ablations.select("no_cr_distill,stick_1+4,stages")] == [
      "no_cr_distill", "stick_1+4", "draction_1+4", "draction_1-4", "no_disc_ft"]
  with pytest.raises(SystemExit, match="unknown row or group"):
    ablations.select("renderer,nope")


def test_a_row_trains_resumes_and_is_tabulated(ablations, tmp_path, capsys):
  # One stage (a real smoke run, fixed stick renderer) keeps the test short; the chaining of
  # stages is pinned by test_stage_commands.
  row = ablations.Row("stick_1", ("test",), ("warmup",), "-", (("render.kind", "stick"),))
  ablations.run_row(row, 0, tmp_path, "smoke", steps=2)
  assert "skipped" not in capsys.readouterr().out
  link = tmp_path / "stick_1" / "seed0" / "warmup"
  (workdir,) = [d for d in (tmp_path / "_stages").glob("warmup-*") if d.is_dir()]
  assert link.is_symlink() and link.resolve() == workdir.resolve()
  assert (link / "result.json").exists()
  walls = json.loads((tmp_path / "stick_1" / "seed0" / "walls.json").read_text())
  assert set(walls) == {"warmup"} and walls["warmup"] > 0
  ablations.run_row(row, 0, tmp_path, "smoke", steps=2)  # resumed: nothing to train
  assert capsys.readouterr().out.count("skipped") == 1
  # Another row whose chain begins with the same stage trains nothing either.
  twin = ablations.Row("stick_1_twin", ("test",), ("warmup",), "-", (("render.kind", "stick"),))
  ablations.run_row(twin, 0, tmp_path, "smoke", steps=2)
  assert capsys.readouterr().out.count("skipped") == 1
  assert (tmp_path / "stick_1_twin" / "seed0" / "warmup").resolve() == workdir.resolve()
  # A folder where the link belongs (another layout) is refused, not trained over.
  odd = ablations.Row("odd", ("test",), ("warmup",), "-", (("render.kind", "stick"),))
  (tmp_path / "odd" / "seed0" / "warmup").mkdir(parents=True)
  with pytest.raises(SystemExit, match="odd/seed0/warmup: expected a link to .*it is a folder"):
    ablations.run_row(odd, 0, tmp_path, "smoke", steps=2)
  evals = json.loads((tmp_path / "stick_1" / "seed0" / "warmup" / "result.json").read_text())
  value = 100.0 * evals["evals"]["heldout"]["authors"]
  line = ablations.table([row], [0, 1], tmp_path).splitlines()[-1]
  assert line.startswith("| stick_1 | 1 |") and f"held-out {value:.1f} (1 seed)" in line


def test_the_table_reads_each_stage_and_the_presets_columns(ablations, tmp_path):
  # Results laid out as run_row leaves them (links to stage workdirs holding result.json),
  # with values chosen so that the mean and the sample std are known: 20 / 40 / 60 % -> 40 +- 20.
  row = ablations.ROWS["draction_1+4"]
  for seed, (warm, last) in enumerate(((0.10, 0.20), (0.30, 0.40), (0.50, 0.60))):
    walls = {}
    for stage, value in zip(row.stages, (warm, last)):
      workdir = tmp_path / "_stages" / f"{stage}-{seed}"
      workdir.mkdir(parents=True)
      evals = {"heldout": {"authors": value}, "heldout_score": {"top1": value + 0.25},
               "heldout_seen": {"authors": 1 - value},
               "heldout_score_seen": {"top1": 1 - value / 2}}
      (workdir / "result.json").write_text(json.dumps({"evals": evals}))
      ablations._link(ablations.row_link(tmp_path, row, seed, stage), workdir)
      walls[stage] = 60.0
    (tmp_path / row.name / f"seed{seed}" / "walls.json").write_text(json.dumps(walls))
  lines = ablations.table([row], [0, 1, 2], tmp_path).splitlines()
  assert lines[2] == ("| draction_1+4 | 1+4 | held-out 40.0 +- 20.0 (3 seeds) | "
                      "62.09 (NTU-60 48/12) | 2.0 min |")
  lines = ablations.table([row], [0, 1, 2], tmp_path, "demo_pretrained",
                          per_stage=True).splitlines()
  assert lines[2] == ("| draction_1+4 | 1+4, after warmup | held-out 30.0 +- 20.0 (3 seeds); "
                      "unseen, top-1 55.0 +- 20.0 (3 seeds); seen (validation) 70.0 +- 20.0 "
                      "(3 seeds); seen, top-1 85.0 +- 10.0 (3 seeds) | | |")
  assert lines[3].startswith("| draction_1+4 | 1+4 | held-out 40.0 +- 20.0 (3 seeds); "
                             "unseen, top-1 65.0 +- 20.0 (3 seeds); seen (validation) 60.0")
  assert lines[3].endswith("| 62.09 (NTU-60 48/12) | 2.0 min |") and len(lines) == 4
  # A preset's column whose evaluator the result lacks is an error naming the file.
  (tmp_path / "_stages" / "refine-2" / "result.json").write_text(
      json.dumps({"evals": {"heldout": {"authors": 0.6}}}))
  with pytest.raises(SystemExit, match=r"seed2/refine/result.json: no evals.heldout_score.top1"):
    ablations.table([row], [0, 1, 2], tmp_path, "demo_pretrained")
