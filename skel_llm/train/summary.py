"""What a run shows: a progress bar, TensorBoard scalars and PNG strips of rendered frames."""

from __future__ import annotations

import os

import numpy as np


class Writer:
  """TensorBoard event files under `<workdir>/tensorboard` (no-op when workdir is None)."""

  def __init__(self, workdir: str | None):
    self._w = None
    if workdir is not None:
      from tensorboardX import SummaryWriter
      self._w = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if self._w is None:
      return
    for k, v in values.items():
      self._w.add_scalar(k, float(v), int(step))
    self._w.flush()

  def close(self) -> None:
    if self._w is not None:
      self._w.close()
      self._w = None


class Progress:
  """tqdm bar over steps showing loss, answer-token accuracy and steps/s."""

  def __init__(self, start: int, total: int, enabled: bool = True):
    self._bar = None
    if enabled:
      from tqdm import tqdm
      self._bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True,
                       mininterval=0.5)
    self._pos = start

  def update(self, step: int, metrics: dict[str, float]) -> None:
    if self._bar is None:
      return
    self._bar.update(step - self._pos)
    self._pos = step
    self._bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.4f}",
                          acc=f"{metrics.get('accuracy', float('nan')):.3f}",
                          steps_s=f"{metrics.get('steps_per_s', float('nan')):.2f}")

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


def strip_image(frames: np.ndarray) -> np.ndarray:
  """float[C, n, S, S, 3] in [0, 1] -> uint8[C*S + C - 1, n*S + n - 1, 3] grid (1-px grey gaps)."""
  frames = np.clip(np.asarray(frames, np.float32), 0.0, 1.0)
  c, n, s = frames.shape[:3]
  out = np.full((c * s + c - 1, n * s + n - 1, 3), 0.3, np.float32)
  for i in range(c):
    for j in range(n):
      out[i * (s + 1):i * (s + 1) + s, j * (s + 1):j * (s + 1) + s] = frames[i, j]
  return (out * 255 + 0.5).astype(np.uint8)


def save_strip(path: str, frames: np.ndarray) -> None:
  """PNG of what the renderer draws: one row per clip, one column per frame."""
  from PIL import Image
  Image.fromarray(strip_image(frames)).save(path)
