"""What a run shows: TensorBoard scalars and images, and PNG strips of rendered frames.

A strip has one row per training clip (its class name above it) and one panel per frame the
model reads (the frame number and the clip's source frame `t` below it), upscaled by an
integer factor with nearest-neighbour sampling, so each rendered pixel stays a visible block
and no interpolation invents detail the model never saw. TensorBoard shows the same image.
The progress line lives in `skel_llm.train.progress`.
"""

from __future__ import annotations

import numpy as np

from skel_llm import fs

PANEL_PX = 128  # smallest panel side of a strip; 32^2 frames are drawn 4x
_BACKGROUND = 40
_TEXT = (235, 235, 235)
_FONT_PX = 13
_GAP = 2


class Writer:
  """TensorBoard event files under `<workdir>/tensorboard` (no-op when workdir is None)."""

  def __init__(self, workdir: str | None):
    self._w = None
    if workdir is not None:
      # tensorboardX writes gs:// itself (through google-cloud-storage), re-uploading the
      # whole event file at every flush.
      from tensorboardX import SummaryWriter
      self._w = SummaryWriter(fs.join(workdir, "tensorboard"))

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if self._w is None:
      return
    for k, v in values.items():
      self._w.add_scalar(k, float(v), int(step))
    self._w.flush()

  def image(self, step: int, tag: str, image: np.ndarray) -> None:
    """uint8[H, W, 3] under `tag` (TensorBoard's Images tab)."""
    if self._w is None:
      return
    self._w.add_image(tag, np.asarray(image, np.uint8), int(step), dataformats="HWC")
    self._w.flush()

  def close(self) -> None:
    if self._w is not None:
      self._w.close()
      self._w = None


def upscale_factor(size: int, panel_px: int = PANEL_PX) -> int:
  """Integer nearest-neighbour factor that makes an S-pixel frame at least `panel_px` wide."""
  return max(1, -(-panel_px // size))


def strip_image(frames: np.ndarray, class_names: list[str] | None = None,
                frame_indices: np.ndarray | None = None, panel_px: int = PANEL_PX) -> np.ndarray:
  """float[C, n, S, S, 3] in [0, 1] -> uint8[H, W, 3]: the labelled strip (module docstring).

  Args:
    frames: rendered frames, one row per clip.
    class_names: C names written above the rows (none: "clip <i>").
    frame_indices: int[C, n] source frame of each panel, written as `t`; none: left out.
    panel_px: smallest panel side; the factor is `upscale_factor(S, panel_px)`.
  """
  from PIL import Image, ImageDraw, ImageFont

  frames = np.clip(np.asarray(frames, np.float32), 0.0, 1.0)
  c, n, s = frames.shape[:3]
  k = upscale_factor(s, panel_px)
  side = s * k
  font = ImageFont.load_default(size=_FONT_PX)  # Pillow's embedded font: same on every machine
  line = _FONT_PX + 6
  row_h = line + side + line
  width = n * side + (n + 1) * _GAP
  canvas = np.full((c * row_h + (c + 1) * _GAP, width, 3), _BACKGROUND, np.uint8)
  pixels = (frames * 255 + 0.5).astype(np.uint8)
  for i in range(c):
    top = _GAP + i * (row_h + _GAP) + line
    for j in range(n):
      left = _GAP + j * (side + _GAP)
      canvas[top:top + side, left:left + side] = pixels[i, j].repeat(k, 0).repeat(k, 1)
  image = Image.fromarray(canvas)
  draw = ImageDraw.Draw(image)
  for i in range(c):
    top = _GAP + i * (row_h + _GAP)
    name = class_names[i] if class_names is not None else f"clip {i}"
    draw.text((_GAP + 2, top + 3), name, fill=_TEXT, font=font)
    for j in range(n):
      caption = f"frame {j + 1}"
      if frame_indices is not None:
        caption += f", t={int(frame_indices[i][j])}"
      draw.text((_GAP + j * (side + _GAP) + 2, top + line + side + 3), caption, fill=_TEXT,
                font=font)
  return np.asarray(image)


def save_strip(path: str, image: np.ndarray) -> None:
  fs.save_image(path, image)


def write_strip(run, state: dict, workdir: str, name: str, writer: Writer, step: int,
                write: bool = True) -> np.ndarray:
  """Renders the first training clips with `state` and writes `<workdir>/<name>.png` and the
  TensorBoard image `strips/<name>` (only when `write`: process 0).

  Every process must call it: the frames come from a computation over the whole mesh
  (`Run.strip_frames`). Returns the image.
  """
  from skel_llm.render import frames as frames_lib

  frames = run.strip_frames(state)
  samples = [run.train_data.sample(g) for g in range(frames.shape[0])]
  names = run.train_source.class_names
  n = frames.shape[1]
  indices = np.stack([np.asarray(frames_lib.segment_indices(np.int32(x["num_frames"]), n))
                      for x in samples])
  image = strip_image(frames, [names[int(x["label"])] for x in samples], indices)
  if write:
    save_strip(fs.join(workdir, f"{name}.png"), image)
    writer.image(step, f"strips/{name}", image)
  return image
