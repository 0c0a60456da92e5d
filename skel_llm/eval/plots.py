"""PNG artefacts of the evaluators: confusion matrices and robustness curves (matplotlib Agg)."""

from __future__ import annotations

from typing import Any

import numpy as np

from skel_llm import fs


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def confusion_png(path: str, confusion: dict, title: str) -> None:
  """Rows = truth, columns = prediction (+ unparsed); each row normalised, counts written in."""
  plt = _pyplot()
  counts = np.asarray(confusion["counts"], np.float64)
  rows, cols = confusion["rows"], confusion["columns"]
  frac = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  size = max(4.0, 0.55 * len(cols) + 2.5)
  fig, ax = plt.subplots(figsize=(size, max(3.5, 0.5 * len(rows) + 2.0)), dpi=110)
  ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto")
  ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
  ax.set_yticks(range(len(rows)), rows, fontsize=8)
  ax.set_xlabel("prediction")
  ax.set_ylabel("truth")
  for i in range(counts.shape[0]):
    for j in range(counts.shape[1]):
      if counts[i, j]:
        ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                color="white" if frac[i, j] > 0.5 else "black")
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fs.save_figure(path, fig)
  plt.close(fig)


def robustness_png(path: str, details: dict[str, Any], title: str) -> None:
  """Accuracy vs corruption level, one panel per corruption, error bars over seeds."""
  plt = _pyplot()
  curves = details["curves"]
  fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), dpi=110,
                           squeeze=False)
  for ax, (kind, points) in zip(axes[0], curves.items()):
    x = [p["level"] * (100 if kind == "dropout" else 1) for p in points]
    y = [100 * p["mean"] for p in points]
    e = [100 * p["std"] for p in points]
    ax.errorbar(x, y, yerr=e, marker="o", capsize=3)
    ax.set_xlabel("joints dropped (%)" if kind == "dropout" else "joint noise std (cm)")
    ax.set_ylabel(f"{details['metric']} (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fs.save_figure(path, fig)
  plt.close(fig)


def history_png(path: str, series: dict[str, list[tuple[int, float]]], title: str) -> None:
  """Accuracy (%) vs training step, one line per `name/metric` series."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=110)
  for label, points in series.items():
    steps, values = zip(*sorted(points))
    style = dict(ls="--", color="grey") if label == "chance" else dict(marker="o")
    ax.plot(steps, [100 * v for v in values], label=label, **style)
  ax.set_xlabel("training step")
  ax.set_ylabel("accuracy (%)")
  ax.set_ylim(0, 100)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fs.save_figure(path, fig)
  plt.close(fig)
