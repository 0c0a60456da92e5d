"""Time profiles for synthetic motions: smooth ramps, raise-hold-lower envelopes, oscillations.

Every profile is a float64[T] array over the clip's frames. A motion happens
inside an active window [start, end] of normalised clip time u in [0, 1]; the
window's length shrinks when the speed knob grows.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def smoothstep(x: np.ndarray) -> np.ndarray:
  """0 below 0, 1 above 1, C1-smooth cubic in between."""
  x = np.clip(x, 0.0, 1.0)
  return x * x * (3.0 - 2.0 * x)


@dataclasses.dataclass(frozen=True)
class Window:
  """The active part of a clip.

  Attributes:
    u: float64[T] normalised time of each frame, 0 at the first, 1 at the last.
    start: u where the motion begins.
    end: u where it has finished.
  """

  u: np.ndarray
  start: float
  end: float

  @property
  def phase(self) -> np.ndarray:
    """float64[T]: 0 before the window, rising linearly to 1 at its end, 1 after."""
    return np.clip((self.u - self.start) / (self.end - self.start), 0.0, 1.0)

  def ramp(self, a: float, b: float) -> np.ndarray:
    """float64[T] smooth 0 -> 1 between window phases a and b."""
    return smoothstep((self.phase - a) / (b - a))

  def pulse(self, up: tuple[float, float], down: tuple[float, float]) -> np.ndarray:
    """float64[T] smooth 0 -> 1 over phases `up`, then 1 -> 0 over phases `down`."""
    return self.ramp(*up) * (1.0 - self.ramp(*down))

  def oscillation(self, cycles: float, a: float = 0.15, b: float = 0.85) -> np.ndarray:
    """float64[T] sin(2 pi cycles s) over phases [a, b] (s: 0 -> 1 there), 0 outside."""
    s = np.clip((self.phase - a) / (b - a), 0.0, 1.0)
    return np.sin(2.0 * np.pi * cycles * s)

  def segment(self, a: float, b: float) -> np.ndarray:
    """float64[T] linear 0 -> 1 between window phases a and b (clipped)."""
    return np.clip((self.phase - a) / (b - a), 0.0, 1.0)


def make_window(num_frames: int, speed: float, rng: np.random.Generator,
                base_length: float = 0.8) -> Window:
  """An active window of length `base_length / speed` (clipped to [0.3, 0.96]) at a random onset."""
  if num_frames < 2:
    raise ValueError(f"a synthetic clip needs at least 2 frames, got {num_frames}")
  if speed <= 0:
    raise ValueError(f"speed must be positive, got {speed}")
  length = float(np.clip(base_length / speed, 0.3, 0.96))
  start = float(rng.uniform(0.02, 1.0 - length - 0.02)) if length < 0.96 else 0.02
  u = np.arange(num_frames, dtype=np.float64) / (num_frames - 1)
  return Window(u=u, start=start, end=start + length)
