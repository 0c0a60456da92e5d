"""The paper's ablation rows on the synthetic protocols, each the mean +- std over seeds.

    python benchmarks/ablations.py --root=/tmp/skel_llm/ablations [--rows=renderer,stages]
        [--seeds=0,1,2] [--preset=demo] [--steps=N] [--set=KEY=VALUE ...] [--dry_run]
        [--table_only] [--per_stage]

Each (row, seed) is a chain of training stages (`configs/<stage>.py:<preset>`, stage k+1
starting from stage k's workdir, as `launch/four_stages.sh` chains them), run as
`python -m skel_llm.main` subprocesses one after another (the machine's cores go to one run
at a time). A stage's workdir is ROOT/_stages/<stage>-<digest>, the digest of its command
(flags, and the workdir it starts from), so rows whose chains begin alike train that prefix
once (the DrAction rows share their warm-up per seed); ROOT/<row>/seed<k>/<stage> is a link
to it. A stage whose workdir holds `result.json` is finished and skipped, so a rerun resumes
where the last one stopped; an unfinished stage resumes from its own checkpoint. The wall
time of a stage is kept beside its workdir (<workdir>.wall.json) and a row's in
ROOT/<row>/seed<k>/walls.json: the time the row's chain takes when trained alone, shared
stages included. The table reads each row's metrics from its last stage's `result.json` (the
evaluators of `skel_llm.eval`; `--per_stage` adds a line per earlier stage; a preset may add
columns, `PRESET_METRICS`; std: the sample std, ddof 1) and prints ours beside the paper's
(docs/ablations.md says which of the paper's rows each of ours stands for, and what is ours).

Rows (`ROWS`; `--rows` takes row names or group names):
  renderer  DrAction vs the fixed "3D + velocity" and 2D stick renderers, stages 1+4 and 1-4
  stages    stages 1+4 vs 1-4, without Disc-FT (1, 3, 4), without CR-Distill (1, 2, 4)
  nfm       the motion modulator off (stages 1-4)
  persons   two persons rendered jointly vs overlaid, on the synthetic interaction classes
  blend     blend weights topology / distance / uniform / learnable, in-domain and under
            cross-topology transfer (ntu25 -> kinect20, smpl22), stages 1+4
A fixed renderer has no parameters to train: its rows drop `renderer/...` from each stage's
`config.trainable` (the rest of the stage's rule stays).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skel_llm.train import defaults  # noqa: E402

ALL_STAGES = ("warmup", "disc_ft", "distill", "refine")
S14, S1234 = ("warmup", "refine"), ALL_STAGES
HELDOUT = ("held-out", "heldout", "authors")  # (column, evaluator, scalar): the authors' rule
TWO_PERSON = ("two-person clips", "heldout", "authors_2p")
# The synthetic interaction classes (skel_llm.synthetic.classes, persons=2) join the demo's.
INTERACTIONS = ("handshake", "push")
TRANSFER = (HELDOUT, ("-> kinect20", "heldout_kinect20", "authors"),
            ("-> smpl22", "heldout_smpl22", "authors"))


@dataclasses.dataclass(frozen=True)
class Row:
  """One ablation row: stages, config overrides (`--config.<key>=<value>`), metrics."""

  name: str
  groups: tuple[str, ...]
  stages: tuple[str, ...]
  paper: str  # the paper's figure for the row it stands for, with its protocol
  overrides: tuple[tuple[str, str], ...] = ()
  metrics: tuple[tuple[str, str, str], ...] = (HELDOUT,)
  last_preset: str = ""  # preset added to the last stage's (e.g. the cross-format evaluators)


def _rows() -> dict[str, Row]:
  rows = [
      Row("draction_1+4", ("renderer", "stages"), S14, "62.09 (NTU-60 48/12)"),
      Row("velocity_1+4", ("renderer",), S14, "56.18 (NTU-60 48/12)",
          (("render.kind", "velocity"),)),
      Row("stick_1+4", ("renderer",), S14, "- (2D projection: no figure given)",
          (("render.kind", "stick"),)),
      Row("draction_1-4", ("renderer", "stages", "nfm"), S1234, "64.72 (NTU-60 48/12)"),
      Row("velocity_1-4", ("renderer",), S1234, "58.77 (NTU-60 48/12)",
          (("render.kind", "velocity"),)),
      Row("no_disc_ft", ("stages",), ("warmup", "distill", "refine"), "1-4 minus 1.55 (NTU-60 30/30)"),
      Row("no_cr_distill", ("stages",), ("warmup", "disc_ft", "refine"),
          "1-4 minus 1.94 (NTU-60 30/30)"),
      Row("no_nfm", ("nfm",), S1234, "63.17 vs 64.72 (NTU-60 48/12)", (("render.enable_nfm", "False"),)),
      Row("persons_joint", ("persons",), S14, "75.37 (NTU-60 48/12, two-person classes)",
          (("data.classes", "interactions"),), (TWO_PERSON, HELDOUT)),
      Row("persons_overlay", ("persons",), S14, "67.14 (NTU-60 48/12, two-person classes)",
          (("data.classes", "interactions"), ("render.persons", "overlay")),
          (TWO_PERSON, HELDOUT)),
  ]
  paper_blend = {"topology": "NTU -> NW-UCLA 60.38", "learnable": "NTU -> NW-UCLA 48.74",
                 "uniform": "NTU -> NW-UCLA 45.67", "distance": "- (ours)"}
  for rule in ("topology", "distance", "uniform", "learnable"):
    rows.append(Row(f"blend_{rule}", ("blend",), S14, paper_blend[rule],
                    (("render.blend", rule),), TRANSFER, last_preset="crossformat"))
  return {r.name: r for r in rows}


ROWS = _rows()
GROUPS = tuple(dict.fromkeys(g for r in ROWS.values() for g in r.groups))


def select(names: str) -> list[Row]:
  """Rows named by a comma list of row or group names, in the order given (a group's rows
  in table order; a row named twice runs once): a session's priority order is kept."""
  wanted = [n.strip() for n in names.split(",") if n.strip()]
  out: dict[str, Row] = {}
  for n in wanted:
    if n == "all":
      found = list(ROWS.values())
    elif n in ROWS:
      found = [ROWS[n]]
    elif n in GROUPS:
      found = [r for r in ROWS.values() if n in r.groups]
    else:
      raise SystemExit(f"--rows: unknown row or group {n!r}; rows: {', '.join(ROWS)}; "
                       f"groups: {', '.join(GROUPS)}, all")
    out.update((r.name, r) for r in found if r.name not in out)
  return list(out.values())


def _stage_config(stage: str, preset: str):
  return defaults.load_config(REPO / "configs" / f"{stage}.py", preset)


def _without_renderer(trainable) -> tuple[str, ...]:
  """A stage's trainable rules with the renderer's parameters left out."""
  out = []
  for pattern in trainable:
    if pattern == defaults.RENDERER:
      continue
    out.append("mllm/.*" if pattern == defaults.EVERYTHING else pattern)
  return tuple(out)


def stage_commands(row: Row, seed: int, root: pathlib.Path, preset: str,
                   steps: int | None = None, settings: tuple[str, ...] = ()
                   ) -> list[tuple[str, pathlib.Path, list[str]]]:
  """(stage, workdir, argv) of every stage of one (row, seed), in order; `settings`
  (`KEY=VALUE`) are added to every stage as `--config.KEY=VALUE`. The workdir is
  `shared_workdir` of the stage's command: equal commands (and starting points) share it."""
  out, previous = [], None
  overrides = dict(row.overrides)
  for i, stage in enumerate(row.stages):
    last = i == len(row.stages) - 1
    stage_preset = ",".join(p for p in (preset, row.last_preset if last else "") if p)
    # Relative to REPO (the runs' cwd), so that the digest does not depend on the checkout.
    argv = [sys.executable, "-m", "skel_llm.main", f"--config=configs/{stage}.py:{stage_preset}",
            f"--config.seed={seed}", f"--config.data.seed={seed}"]
    c = _stage_config(stage, stage_preset)
    for key, value in overrides.items():
      if key == "data.classes" and value == "interactions":
        value = repr(tuple(c.data.classes) + INTERACTIONS)
      argv.append(f"--config.{key}={value}")
    if overrides.get("render.kind", "draction") != "draction":
      argv.append(f"--config.trainable={_without_renderer(c.trainable)!r}")
    if "heldout_smpl22" in c.evals:  # placed as the cross-format table of the README does
      argv.append("--config.evals.heldout_smpl22.data.placement=humanml3d_front")
    if steps:
      argv.append(f"--config.total_steps={steps}")
    argv += [f"--config.{kv}" for kv in settings]
    if previous is not None:
      argv.append(f"--config.init_from={previous}")
    workdir = shared_workdir(root, stage, argv[1:])
    argv.insert(4, f"--workdir={workdir}")
    out.append((stage, workdir, argv))
    previous = workdir
  return out


def shared_workdir(root: pathlib.Path, stage: str, flags: list[str]) -> pathlib.Path:
  """ROOT/_stages/<stage>-<12 hex of the sha256 of the flags>: a function of the command
  alone (its init_from names the previous stage's shared workdir, so the chain is in it),
  with ROOT itself left out so that a moved ROOT still finds its finished stages."""
  text = "\0".join(f.replace(str(root), "<ROOT>") for f in flags)
  digest = hashlib.sha256(text.encode()).hexdigest()[:12]
  return root / "_stages" / f"{stage}-{digest}"


def row_link(root: pathlib.Path, row: Row, seed: int, stage: str) -> pathlib.Path:
  return root / row.name / f"seed{seed}" / stage


def _link(link: pathlib.Path, target: pathlib.Path) -> None:
  """Points ROOT/<row>/seed<k>/<stage> at the shared workdir (relative, so ROOT can move)."""
  relative = pathlib.Path(os.path.relpath(target, link.parent))
  if link.is_symlink() and pathlib.Path(os.readlink(link)) == relative:
    return
  if link.exists() or link.is_symlink():
    raise SystemExit(f"{link}: expected a link to {target} (this runner's layout); it is "
                     f"{'a link to ' + os.readlink(link) if link.is_symlink() else 'a folder'}: "
                     f"move it away, or use another --root")
  link.parent.mkdir(parents=True, exist_ok=True)
  link.symlink_to(relative, target_is_directory=True)


def run_row(row: Row, seed: int, root: pathlib.Path, preset: str, steps: int | None,
            dry_run: bool = False, settings: tuple[str, ...] = ()) -> None:
  """Trains the stages of one (row, seed) that are not finished yet."""
  walls_path = root / row.name / f"seed{seed}" / "walls.json"
  walls = json.loads(walls_path.read_text()) if walls_path.exists() else {}
  for stage, workdir, argv in stage_commands(row, seed, root, preset, steps, settings):
    wall_path = workdir.with_name(workdir.name + ".wall.json")
    if (workdir / "result.json").exists():
      print(f"[ablations] {row.name} seed {seed} {stage}: finished ({workdir.name}), skipped",
            flush=True)
    else:
      print(f"[ablations] {row.name} seed {seed} {stage}: {' '.join(argv[1:])}", flush=True)
      if dry_run:
        continue
      start = time.monotonic()
      env = dict(os.environ, PYTHONPATH=os.pathsep.join(
          p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
      done = subprocess.run(argv, cwd=REPO, env=env)
      if done.returncode:
        raise SystemExit(f"[ablations] {row.name} seed {seed} {stage} failed (exit "
                         f"{done.returncode}); rerun the same command to resume it")
      # The run that finished the stage; a stage stopped and resumed counts its last run only.
      wall_path.write_text(json.dumps({"seconds": time.monotonic() - start}))
    _link(row_link(root, row, seed, stage), workdir)
    # None: finished by a run this runner did not time (the row's wall is then unknown).
    walls[stage] = json.loads(wall_path.read_text())["seconds"] if wall_path.exists() else None
    walls_path.parent.mkdir(parents=True, exist_ok=True)
    walls_path.write_text(json.dumps(walls, indent=1))


# Columns a preset's evaluators add to every row: `demo_pretrained` evaluates zero-shot on the
# unseen classes (HELDOUT, greedy, and the likelihood ranking) and on the validation split of
# held-out seeds of its seen classes (defaults._demo_pretrained).
PRESET_METRICS = {
    "demo_pretrained": (("unseen, top-1", "heldout_score", "top1"),
                        ("seen (validation)", "heldout_seen", "authors"),
                        ("seen, top-1", "heldout_score_seen", "top1")),
}


def metrics_of(row: Row, preset: str) -> tuple[tuple[str, str, str], ...]:
  extra = tuple(m for p in preset.split(",") for m in PRESET_METRICS.get(p, ()))
  return tuple(row.metrics) + tuple(m for m in extra if m not in row.metrics)


def row_results(row: Row, seeds, root: pathlib.Path, preset: str = "",
                stage: str | None = None) -> dict:
  """{column: [value per finished seed]} of the row's last stage (or of `stage`) and the
  summed wall seconds per finished seed (the whole row's, whichever stage is read)."""
  metrics = metrics_of(row, preset)
  values = {m[0]: [] for m in metrics}
  walls = []
  for seed in seeds:
    result = root / row.name / f"seed{seed}" / (stage or row.stages[-1]) / "result.json"
    if not result.exists():
      continue
    evals = json.loads(result.read_text())["evals"]
    for column, key, scalar in metrics:
      if key not in evals or scalar not in evals[key]:
        raise SystemExit(f"{result}: no evals.{key}.{scalar}; the stage must run that "
                         f"evaluator (the row's metrics, and its preset's: PRESET_METRICS)")
      values[column].append(100.0 * float(evals[key][scalar]))
    walls_path = root / row.name / f"seed{seed}" / "walls.json"
    seconds = json.loads(walls_path.read_text()).values() if walls_path.exists() else [None]
    if None not in seconds:
      walls.append(sum(seconds))
  return {"values": values, "walls": walls}


def _cell(values: list[float]) -> str:
  if not values:
    return "-"
  if len(values) == 1:
    return f"{values[0]:.1f} (1 seed)"
  return f"{np.mean(values):.1f} +- {np.std(values, ddof=1):.1f} ({len(values)} seeds)"


def table(rows: list[Row], seeds, root: pathlib.Path, preset: str = "",
          per_stage: bool = False) -> str:
  """The Markdown table of the finished seeds of `rows`; `per_stage`: a line per stage of
  each row (its metrics after that stage), the row's line being its last."""
  lines = ["| row | stages | ours: metric = mean +- std (seeds) | paper | wall per seed |",
           "|---|---|---|---|---|"]
  for row in rows:
    res = row_results(row, seeds, root, preset)
    wall = f"{np.mean(res['walls']) / 60:.1f} min" if res["walls"] else "-"
    stages = "+".join(str(ALL_STAGES.index(s) + 1) for s in row.stages)
    for stage in row.stages[:-1] if per_stage else ():
      part = row_results(row, seeds, root, preset, stage=stage)
      cells = "; ".join(f"{c} {_cell(v)}" for c, v in part["values"].items())
      lines.append(f"| {row.name} | {stages}, after {stage} | {cells} | | |")
    cells = "; ".join(f"{c} {_cell(v)}" for c, v in res["values"].items())
    lines.append(f"| {row.name} | {stages} | {cells} | {row.paper} | {wall} |")
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--root", required=True, help="folder of the rows' workdirs")
  parser.add_argument("--rows", default="all", help="row or group names, comma separated")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--preset", default="demo", help="the stage configs' preset")
  parser.add_argument("--steps", type=int, default=None, help="total_steps of every stage")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a config override for every stage (e.g. evals.heldout.every_steps=0: "
                           "evaluate at the end only); repeatable")
  parser.add_argument("--dry_run", action="store_true", help="print the commands only")
  parser.add_argument("--table_only", action="store_true", help="train nothing")
  parser.add_argument("--per_stage", action="store_true",
                      help="the table also has each row's metrics after each of its stages")
  args = parser.parse_args(argv)
  rows = select(args.rows)
  for kv in args.set:
    if "=" not in kv or kv.startswith("="):
      raise SystemExit(f"--set {kv!r}: expected KEY=VALUE (a config key without 'config.')")
  seeds = [int(s) for s in args.seeds.split(",")]
  root = pathlib.Path(args.root).resolve()
  if not args.table_only:
    for row in rows:
      for seed in seeds:
        run_row(row, seed, root, args.preset, args.steps, dry_run=args.dry_run,
                settings=tuple(args.set))
  if not args.dry_run:
    print(table(rows, seeds, root, args.preset, per_stage=args.per_stage))


if __name__ == "__main__":
  main()
