"""Pins skel_llm/eval/runner.py's protocol groups and skel_llm/evaluate.py's one-line errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from skel_llm.eval import registry, runner


def _run(tmp_path, name, protocol, strict):
  d = tmp_path / name
  d.mkdir()
  (d / "result.json").write_text(json.dumps({"protocol": protocol, "evals": {
      "heldout": {"num_clips": 10.0, "chance": 0.2, "strict": strict}}}))
  return str(d)


def test_group_reports_each_split_and_mean_std(tmp_path):
  runs = [_run(tmp_path, f"r{i}", f"ntu60_smie_{i}", v)
          for i, v in zip((2, 1, 3), (0.5, 0.25, 0.75))]
  table = runner.group_table("ntu60_smie", runs)
  assert "| ntu60_smie_1 | heldout | strict | 25.00 |" in table
  assert "| ntu60_smie_3 | heldout | strict | 75.00 |" in table
  std = 100 * np.std([0.25, 0.5, 0.75])
  assert f"| **ntu60_smie mean +- std** | heldout | strict | 50.00 +- {std:.2f} |" in table
  with pytest.raises(ValueError, match=r"group ntu60_smie: no run of \['ntu60_smie_3'\]"):
    runner.group_table("ntu60_smie", runs[:2])
  other = _run(tmp_path, "x", "ntu60_48_12", 0.1)
  with pytest.raises(ValueError, match="trained on protocol 'ntu60_48_12', not one of group"):
    runner.group_table("ntu60_smie", [*runs[:2], other])
  with pytest.raises(ValueError, match="protocol ntu60_smie_2 given twice"):
    runner.group_table("ntu60_smie", [*runs, runs[0]])


def test_markdown_table_and_history(tmp_path):
  table = registry.markdown_table({"heldout": {"num_clips": 48.0, "strict": 0.5}})
  assert table.splitlines()[2] == "| heldout | num_clips 48, strict 50.00% |"
  for step, v in ((100, 0.25), (200, 0.5)):
    (tmp_path / "heldout").mkdir(exist_ok=True)
    (tmp_path / "heldout" / f"step{step}.json").write_text(json.dumps(
        {"step": step, "scalars": {"strict": v, "authors": v, "chance": 0.2}}))
  series = registry.history(str(tmp_path))
  assert series == {"heldout/strict": [(100, 0.25), (200, 0.5)],
                    "heldout/authors": [(100, 0.25), (200, 0.5)],
                    "chance": [(100, 0.2), (200, 0.2)]}
  assert (tmp_path / "curves.png").exists() is False
  registry.write_history(str(tmp_path))
  assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_run_without_checkpoints_is_one_line(tmp_path):
  out = subprocess.run([sys.executable, "-m", "skel_llm.evaluate",
                        "--config=configs/distill.py:smoke", f"--workdir={tmp_path}"],
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 2, out.stderr[-2000:]
  assert out.stderr.strip().splitlines()[-1] == (
      f"[skel_llm] error: {tmp_path}/checkpoints holds no checkpoint; train first or give "
      f"--from_export")
