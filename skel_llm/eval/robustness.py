"""Robustness (rebuttal Tables 3/4): a recognition evaluator re-run on corrupted skeletons.

The evaluator named by `of` (a `recognition` entry of `config.evals`) is run unchanged, then
again with each corruption of `skel_llm.eval.data.corrupt` applied before rendering: joint
dropout at each rate in `dropout` and Gaussian joint noise at each standard deviation in
`noise_cm`, each over `seeds` seeds (0, 1, ...); the curve is the mean and standard
deviation over seeds of the base evaluator's main metric on its first `num_clips` clips
(all of them when 0) (strict-rule accuracy for decoding,
top-1 for likelihood ranking), with the clean accuracy as level 0.
"""

from __future__ import annotations

from typing import Any

from skel_llm.eval import metrics
from skel_llm.eval import options as options_lib
from skel_llm.eval import recognition



class Robustness:
  """Accuracy vs corruption of one recognition evaluator."""

  def __init__(self, name: str, ev: Any, ctx: Any):
    evals = ctx.config.evals
    if not ev.of or ev.of not in evals or evals[ev.of].type != "recognition":
      known = [k for k, v in evals.items() if v.get("type") == "recognition"]
      raise ValueError(f"config.evals.{name}.of {ev.of!r} must name a recognition evaluator of "
                       f"config.evals; these are: {known}")
    if int(ev.seeds) < 1:
      raise ValueError(f"config.evals.{name}.seeds must be at least 1")
    for key, lo, hi in (("dropout", 0.0, 1.0), ("noise_cm", 0.0, 1e4)):
      bad = [x for x in ev[key] if not lo < float(x) < hi]
      if bad:
        raise ValueError(f"config.evals.{name}.{key}: {bad} outside ({lo}, {hi})")
    self.name, self.ev = name, ev
    base_cfg = options_lib.with_defaults(ev.of, evals[ev.of])
    if int(ev.num_clips) > 0:  # the base's first num_clips clips (its own count when 0)
      base_cfg.num_clips = int(ev.num_clips)
    self.base = recognition.Recognition(ev.of, base_cfg, ctx)

  @property
  def main_metric(self) -> str:
    return "mean_drop"

  def run(self, state) -> tuple[dict[str, float], dict[str, Any]]:
    key = self.base.main_metric
    self.base.corruption = None
    clean, _ = self.base.run(state)
    curves: dict[str, Any] = {}
    scalars: dict[str, float] = {"clean": clean[key]}
    drops = []
    for kind, levels in (("dropout", self.ev.dropout), ("noise", self.ev.noise_cm)):
      points = [{"level": 0.0, "mean": clean[key], "std": 0.0, "seeds": [clean[key]]}]
      for level in levels:
        values = []
        for seed in range(int(self.ev.seeds)):
          self.base.corruption = (kind, float(level), seed)
          values.append(self.base.run(state)[0][key])
        mean, std = metrics.mean_std(values)
        points.append({"level": float(level), "mean": mean, "std": std, "seeds": values})
        scalars[f"{kind}_{level:g}"] = mean
        drops.append(clean[key] - mean)
      curves[kind] = points
    self.base.corruption = None
    scalars["mean_drop"] = float(sum(drops) / max(len(drops), 1))
    return scalars, {"metric": f"{self.ev.of}/{key}", "units": {"dropout": "fraction of joints",
                                                                "noise": "cm (std)"},
                     "curves": curves}
