"""`config.evals`: named evaluators, checked before anything compiles, run on a schedule.

Each entry of `config.evals` is a dict with `type` (a module of `skel_llm.eval`: one of
`TYPES`), `every_steps` (0: only at the end of training; every evaluator also runs at the
end), and the type's options. Recognition, YES/NO, captioning and QA evaluators also take:
  num_clips   clips evaluated (0 turns the evaluator off; fewer when the split is smaller)
  batch_size  global evaluation batch (a multiple of the data-parallel size)
  prompt      'mqa' or 'reason' for recognition ('' = config.data.eval_task)
  data        overrides of config.data for the evaluation split (`skel_llm.eval.data`)

An evaluator is given a `Context` (the config, the prompt encoder, `PredictFns` and the answer
budget), never the trainer. `Evaluators.run(state, step)` returns `{name: scalars}` and, on
process 0, writes `<out>/<name>.json` (the newest) and `<out>/<name>/step<N>.json` with the
details (per-class accuracy, confusion matrix, every reply, `render_overflow`: the (tile,
Gaussian) pairs its renders dropped, warned about when not 0), the confusion matrix and
robustness curve as PNG, and the scalars to TensorBoard as `<name>/<metric>`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable

import jax

from skel_llm import fs
from skel_llm.eval import data as data_lib
from skel_llm.eval import options as options_lib
from skel_llm.eval import captioning, plots, qa, recognition, robustness, yesno
from skel_llm.eval.predict import PredictFns

log = logging.getLogger(__name__)

TYPES = {"recognition": recognition.Recognition, "yesno": yesno.YesNo,
         "robustness": robustness.Robustness, "captioning": captioning.Captioning, "qa": qa.QA}
with_defaults = options_lib.with_defaults


def _dataset_of(tfds_name: str) -> str | None:
  """The class-name table a TFDS build uses (for protocol checks), or None when unknown."""
  if tfds_name.startswith("ntu_rgbd/ntu60"):
    return "ntu60"
  if tfds_name.startswith("ntu_rgbd/ntu120"):
    return "ntu120"
  if tfds_name.startswith("pku_mmd"):
    return "pku_mmd"
  if tfds_name.startswith("synthetic_actions"):
    return "synthetic"
  return None


def check(config) -> None:
  """All of `config.evals` against the registry: raises before anything is built or compiled."""
  from skel_llm.data import protocols
  evals = config.get("evals", {}) or {}
  for name, raw in evals.items():
    ev = with_defaults(name, raw)
    if int(ev.every_steps) < 0:
      raise ValueError(f"config.evals.{name}.every_steps must be >= 0 (0: only at the end)")
    if "data" not in ev:
      continue
    if int(ev.num_clips) < 0 or int(ev.batch_size) <= 0:
      raise ValueError(f"config.evals.{name}: num_clips must be >= 0 and batch_size positive")
    d = data_lib.data_config(config.data, ev.data, num_clips=ev.num_clips, prompt="mqa")
    # Another topology than the renderer's is a cross-format evaluation: the evaluator
    # transfers the trained renderer to it (`PredictFns.render`).
    from skel_llm.skeleton import topology as topology_lib
    if d.get("crossformat"):
      from skel_llm.data import crossformat
      proto = crossformat.get(d.crossformat)
      crossformat.check_trained_on(proto, config.data)
      if proto.target == "bvh_folder":
        continue  # the folder's skeleton is known once its files are read
    if d.topology not in topology_lib.names():
      raise ValueError(f"config.evals.{name}.data.topology {d.topology!r} is unknown; use one "
                       f"of {topology_lib.names()}")
    if d.get("protocol"):
      if d.protocol not in protocols.names():
        raise ValueError(f"config.evals.{name}.data.protocol {d.protocol!r} is unknown; use one "
                         f"of {protocols.names()}")
      if d.source != "tfds":
        raise ValueError(f"config.evals.{name}.data.protocol {d.protocol!r} needs a TFDS source; "
                         f"its source is {d.source!r}")
      want = protocols.get(d.protocol).dataset
      have = _dataset_of(d.tfds_name)
      if have is not None and have != want:
        raise ValueError(f"config.evals.{name}.data.protocol {d.protocol!r} is a {want} split, "
                         f"but the evaluator reads {d.tfds_name!r} ({have})")


@dataclasses.dataclass
class Context:
  """What an evaluator may use.

  Attributes:
    config: the run's config (data defaults, render settings, `evals`).
    encoder: the prompt encoder (`skel_llm.text.encode.ConversationEncoder`).
    predict: prediction functions over the run's model (`skel_llm.eval.predict`).
    answer_tokens: returns the longest answer (tokens, end token included) of the task the
      run trains on; a recognition evaluator with `max_new_tokens=0` decodes up to it + 8.
  """

  config: Any
  encoder: Any
  predict: PredictFns
  answer_tokens: Callable[[], int]
  _budget: int | None = None

  def answer_budget(self) -> int:
    if self._budget is None:
      self._budget = int(self.answer_tokens()) + 8
    return self._budget


class Evaluators:
  """The evaluators of `config.evals` that are on (num_clips > 0), built once for a run."""

  def __init__(self, ctx: Context):
    check(ctx.config)
    self.ctx = ctx
    self.items: dict[str, Any] = {}
    dp = ctx.predict.mesh.shape["data"] * ctx.predict.mesh.shape["fsdp"]
    evals = ctx.config.get("evals", {}) or {}
    for name, raw in evals.items():
      ev = with_defaults(name, raw)
      if ev.type in options_lib.WITH_DATA_TYPES and int(ev.num_clips) == 0:
        continue
      if "batch_size" in ev and int(ev.batch_size) % dp:
        raise ValueError(f"config.evals.{name}.batch_size {ev.batch_size} is not divisible by "
                         f"the data-parallel size {dp}")
      if ev.type == "robustness":
        base = with_defaults(ev.of, evals[ev.of]) if ev.of in evals else None
        if base is not None and int(base.get("num_clips", 1)) == 0:
          continue  # its base evaluator is off
      try:
        self.items[name] = (ev, TYPES[ev.type](name, ev, ctx))
      except (ValueError, KeyError, FileNotFoundError) as e:
        if f"config.evals.{name}" in str(e):
          raise
        raise type(e)(f"config.evals.{name}: {e}") from e

  def due(self, step: int, final: bool) -> list[str]:
    return [n for n, (ev, _) in self.items.items()
            if final or (int(ev.every_steps) > 0 and step % int(ev.every_steps) == 0)]

  def run(self, state, step: int, *, final: bool = False, out_dir: str | None = None,
          writer=None, names: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Runs the evaluators due at `step` (all of them when `final`); every process calls it."""
    results = {}
    predict = self.ctx.predict
    for name in (names if names is not None else self.due(step, final)):
      ev, evaluator = self.items[name]
      predict.take_dropped()  # count this evaluator's renders only
      scalars, details = evaluator.run(state)
      details = {**details, "render_overflow": predict.take_dropped()}
      if details["render_overflow"] and jax.process_index() == 0:
        _warn_dropped(name, step, details["render_overflow"])
      results[name] = scalars
      if writer is not None:
        logged = {f"{name}/{k}": v for k, v in scalars.items()}
        for rule, table in (details.get("per_class") or {}).items():
          logged.update({f"{name}/per_class_{rule}/{c}": v for c, v in table.items()})
        writer.scalars(step, logged)
      if out_dir is not None and jax.process_index() == 0:
        _write(out_dir, name, step, ev, scalars, details)
    return results


def _warn_dropped(name: str, step: int, dropped: int) -> None:
  log.warning("eval %s at step %d: the tiled rasteriser dropped %d (tile, Gaussian) pairs "
              "(too many for config.render.capacity); those frames are not exact. Recorded as "
              "render_overflow in its JSON; config.render.dense=True draws exactly",
              name, step, dropped)
  print(f"[skel_llm] warning: eval {name} at step {step}: the tiled rasteriser dropped "
        f"{dropped} (tile, Gaussian) pairs; frames not exact (<out>/{name}.json: "
        f"render_overflow)", flush=True)


def _write(out_dir: str, name: str, step: int, ev, scalars: dict, details: dict) -> None:
  folder = fs.join(out_dir, name)
  fs.makedirs(folder)
  record = {"name": name, "type": ev.type, "step": int(step), "scalars": scalars,
            "options": ev.to_dict(), **details}
  for path in (fs.join(folder, f"step{step}.json"), fs.join(out_dir, f"{name}.json")):
    fs.write_json(path, record, indent=1)
  if "confusion" in details:
    plots.confusion_png(fs.join(folder, f"step{step}_confusion.png"), details["confusion"],
                        f"{name} at step {step} ({ev.get('method', '')}, {scalars['num_clips']:.0f}"
                        f" clips)")
  if "curves" in details:
    plots.robustness_png(fs.join(folder, f"step{step}_robustness.png"), details,
                         f"{name} at step {step}")


# The curves worth a picture: each evaluator type's accuracies.
CURVE_METRICS = ("strict", "authors", "top1", "top5", "balanced", "accuracy", "cider_d",
                 "chance")


def history(out_dir: str) -> dict[str, list[tuple[int, float]]]:
  """{'name/metric': [(step, value), ...]} from every `<out_dir>/<name>/step<N>.json`, plus
  'chance' (that of the first evaluator reporting one)."""
  series: dict[str, list[tuple[int, float]]] = {}
  chance_of = None
  if not fs.isdir(out_dir):
    return series
  for name in fs.listdir(out_dir):
    folder = fs.join(out_dir, name)
    if not fs.isdir(folder):
      continue
    for fname in fs.listdir(folder):
      if not (fname.startswith("step") and fname.endswith(".json")):
        continue
      rec = fs.read_json(fs.join(folder, fname))
      step, scalars = int(rec["step"]), rec["scalars"]
      for key in CURVE_METRICS:
        if key not in scalars:
          continue
        if key == "chance":
          chance_of = chance_of or name
          if chance_of != name:
            continue
          label = "chance"
        else:
          label = f"{name}/{key}"
        series.setdefault(label, []).append((step, float(scalars[key])))
  return series


def write_history(out_dir: str) -> str | None:
  """`<out_dir>/curves.png`: every evaluator's accuracy over the run's evaluation steps."""
  series = history(out_dir)
  if not series or jax.process_index() != 0:
    return None
  path = fs.join(out_dir, "curves.png")
  plots.history_png(path, series, "held-out accuracy during training")
  return path


def markdown_table(results: dict[str, dict[str, float]]) -> str:
  """One row per evaluator, its scalars as `key value` pairs (percentages where fractions)."""
  lines = ["| evaluator | metrics |", "|---|---|"]
  for name, scalars in results.items():
    cells = []
    for k, v in scalars.items():
      if k == "num_clips":
        cells.append(f"{k} {int(v)}")
      else:
        cells.append(f"{k} {100 * v:.2f}%" if abs(v) <= 1.0 else f"{k} {v:.4g}")
    lines.append(f"| {name} | {', '.join(cells)} |")
  return "\n".join(lines)
