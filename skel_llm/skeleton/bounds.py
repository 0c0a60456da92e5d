"""Physical bounds on parsed values, checked on what a parser returns (after the float32 cast).

A finite float64 such as 1e300 passes a finiteness check and then becomes inf
in float32, so every parser checks its values twice: against a documented bound
before the cast (every default bound is far below float32's 3.4e38, so a value
inside it survives the cast), and for finiteness after it (which also covers a
caller who widens a bound to inf). Bounds are per format, overridable by a
parser argument for unusual data:

| format | values | default bound | argument |
|---|---|---|---|
| NTU, PKU-MMD, NW-UCLA, HumanML3D, H36M `.npz` | camera / world coordinates (m) | abs <= 100 m | `max_abs` |
| NTU fields not kept in a record | depthX/Y, colorX/Y pixels | one image size beyond the 512 x 424 depth / 1920 x 1080 colour image | `image_margin` |
| NTU fields not kept in a record | orientation quaternion; body header | abs <= 1.001; Kinect SDK enum ranges (`ntu.BODY_LIMITS`) | - |
| HumanML3D `new_joint_vecs` | the 263 features (m, m/frame, rad/frame, 6D, 0/1) | abs <= 100 | `max_abs` |
| BVH | OFFSETs, position channels, FK positions (file units) | abs <= 1e5 (1 km in cm, 100 m in mm) | `max_abs` |
| BVH | rotation channels (degrees) | abs <= 36000 (100 turns) | `max_angle` |
| BVH | Frame Time (s) | 1e-4 .. 10 | - |
| Kinetics-skeleton | normalised image coordinates | -1 .. 2 (one frame beyond each edge) | `image_margin` |
| COCO | keypoint pixels | -W .. 2W, -H .. 2H of the image's own size (abs <= 1e5 without one) | `image_margin` |
| H36M `.npy` 2D, `.npz` `part` | pixels of a 1000 x 1002 frame | -W .. 2W, -H .. 2H | `image_margin`, `image_size` |
| Kinetics score, H36M confidence | confidences | 0 .. 1 (not overridable) | - |
| HumanML3D captions | start / end seconds | 0 .. 1e4 | - |
| PKU-MMD label files | confidence | 0 .. 100 (finite, fits float32) | - |
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from skel_llm.skeleton.errors import SkeletonFormatError

METRIC_MAX_ABS = 100.0  # metres: no camera or motion-capture volume is 100 m across
FEATURE_MAX_ABS = 100.0  # HumanML3D features: metres, m/frame, rad/frame, unit 6D, 0/1
BVH_MAX_ABS = 1e5  # BVH file units, which vary (cm, inches, mm): 100 m even in millimetres
BVH_MAX_ANGLE = 36000.0  # degrees: 100 full turns
BVH_FRAME_TIME = (1e-4, 10.0)  # seconds per frame: 10 kHz .. 0.1 Hz
IMAGE_MARGIN = 1.0  # pixel formats: at most one image size beyond each edge
CAPTION_MAX_S = 1e4  # HumanML3D caption spans: clips last seconds, never hours
LABEL_CONFIDENCE_MAX = 100.0  # PKU-MMD label confidence (small integers in the release)
PIXEL_MAX_ABS = 1e5  # pixel formats whose image size is not known
H36M_IMAGE_SIZE = (1000.0, 1002.0)  # width, height: the largest Human3.6M video frame

# where(index) -> (line number or JSON path or None, text naming the value inside it)
Locator = Callable[[tuple[int, ...]], tuple[int | str | None, str]]


def check_range(values: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray, *, path: str,
                where: Locator, what: str, hint: str = "") -> None:
  """Raises SkeletonFormatError at the first entry of `values` outside [lo, hi] (NaN included).

  `lo` / `hi` broadcast against `values` (per-axis image sizes).
  """
  ok = values >= lo  # NaN compares False (without a warning)
  ok &= values <= hi
  if ok.all():
    return
  idx = tuple(int(i) for i in np.argwhere(~ok)[0])
  place, name = where(idx)
  lo_v = np.broadcast_to(lo, values.shape)[idx]
  hi_v = np.broadcast_to(hi, values.shape)[idx]
  raise SkeletonFormatError(path, place, f"{name}: {what} {_show(values[idx])} is outside "
                            f"[{_show(lo_v)}, {_show(hi_v)}]{hint}")


def check_abs(values: np.ndarray, max_abs: float, *, path: str, where: Locator, what: str,
              arg: str = "max_abs") -> None:
  """`check_range(values, -max_abs, max_abs)` with a hint naming the overriding argument."""
  check_range(values, -max_abs, max_abs, path=path, where=where, what=what,
              hint=f" (a physically impossible magnitude; pass {arg}= for unusual data)")


def to_float32(values: np.ndarray, *, path: str, where: Locator, what: str) -> np.ndarray:
  """values as float32, every entry checked finite after the cast."""
  with np.errstate(over="ignore", invalid="ignore"):
    out = np.asarray(values).astype(np.float32)
  bad = ~np.isfinite(out)
  if bad.any():
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    place, name = where(idx)
    raise SkeletonFormatError(path, place, f"{name}: {what} {_show(np.asarray(values)[idx])} is "
                              "not a finite float32")
  return out


def checked_float32(values: np.ndarray, max_abs: float, *, path: str, where: Locator, what: str,
                    arg: str = "max_abs") -> np.ndarray:
  """values bounded by `max_abs`, then cast to float32 and checked finite."""
  check_abs(values, max_abs, path=path, where=where, what=what, arg=arg)
  return to_float32(values, path=path, where=where, what=what)


def image_limits(size: tuple[float, float], margin: float) -> tuple[np.ndarray, np.ndarray]:
  """(lo, hi) float64[2] per-axis limits for (x, y) in an image of `size` = (W, H)."""
  wh = np.asarray(size, np.float64)
  return -margin * wh, (1.0 + margin) * wh


def _show(v) -> str:
  v = float(v)
  return repr(int(v)) if v.is_integer() and abs(v) < 1e16 else f"{v:.6g}"


def axis_name(k: int) -> str:
  return "xyz"[k] if 0 <= k < 3 else str(k)
