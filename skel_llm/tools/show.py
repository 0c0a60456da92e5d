"""Draws a skeleton file (any supported format) as a stick-figure PNG strip or GIF.

    python -m skel_llm.tools.show FILE -o out.png [--frames 8] [--format ntu]
    python -m skel_llm.tools.show FILE -o out.gif [--fps 15]
    python -m skel_llm.tools.show --synthetic "wave right hand" --seed 0 -o wave.png

Front view (the file's x to the right, the topology's up axis up; for Kinect
data, whose x grows to the sensor's left, this is a mirror view, like Kinect's
own colour frames), one panel per frame; the
left side of each body is blue, the right side red, the midline grey; the
second person is drawn in lighter shades. Joints with no data are not drawn.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

from skel_llm import fs
from skel_llm.skeleton import load, sampling
from skel_llm.skeleton.record import SkeletonRecord

_SIDE_COLOURS = (  # (left, right, middle) per person
    ((40, 90, 220), (220, 50, 40), (90, 90, 90)),
    ((120, 170, 255), (255, 140, 120), (170, 170, 170)),
)


def _screen(record: SkeletonRecord) -> np.ndarray:
  """float64[T, P, J, 2] drawing coordinates: x right, y up."""
  topo = record.topology
  xy = record.positions[..., :2].astype(np.float64)
  if topo.units == "normalized" and "image_size" in record.metadata:
    xy = xy * np.asarray(record.metadata["image_size"], np.float64)  # undo per-axis scaling
  if topo.up_axis == "-y":
    xy = xy * np.array([1.0, -1.0])
  elif topo.up_axis == "+z":
    xy = np.stack([record.positions[..., 0], record.positions[..., 2]], axis=-1)
  return xy


def _joint_sides(record: SkeletonRecord) -> list[int]:
  """0 left, 1 right, 2 middle for every joint."""
  topo = record.topology
  side = [2] * topo.num_joints
  for part, joints in topo.parts.items():
    for j in joints:
      if part.startswith("left_"):
        side[j] = 0
      elif part.startswith("right_"):
        side[j] = 1
  return side


def pixel_coords(record: SkeletonRecord, size: int = 256, min_valid: float = 0.05) -> np.ndarray:
  """float64[T, P, J, 2] pixel (column, row) of every joint in `draw_frames` panels."""
  xy = _screen(record)
  ok = record.valid > min_valid
  if not ok.any():
    raise ValueError(f"{record.source or '<record>'}: no valid joint to draw")
  pts = xy[ok]
  lo, hi = pts.min(axis=0), pts.max(axis=0)
  span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6))
  margin = 0.08 * size
  scale = (size - 2 * margin) / span
  centre = (lo + hi) / 2

  return np.stack([size / 2 + (xy[..., 0] - centre[0]) * scale,
                   size / 2 - (xy[..., 1] - centre[1]) * scale], axis=-1)


def draw_frames(record: SkeletonRecord, frames: np.ndarray, *, size: int = 256,
                min_valid: float = 0.05) -> list[Image.Image]:
  """One RGB image per requested frame, all on the same scale."""
  px = pixel_coords(record, size, min_valid)
  ok = record.valid > min_valid
  side = _joint_sides(record)
  bones = record.topology.bones
  width = max(2, size // 80)
  images = []
  for t in frames:
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for p in range(record.num_persons):
      colours = _SIDE_COLOURS[min(p, 1)]
      for a, b in bones:
        if ok[t, p, a] and ok[t, p, b]:
          s = side[b] if side[b] != 2 else side[a]
          draw.line([tuple(px[t, p, a]), tuple(px[t, p, b])], fill=colours[s], width=width)
      for j in np.flatnonzero(ok[t, p]):
        x, y = px[t, p, j]
        r = width * 0.9
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colours[side[j]])
    draw.text((4, 2), f"t={t}", fill=(0, 0, 0))
    images.append(img)
  return images


def render(record: SkeletonRecord, out: str, *, frames: int = 8, size: int = 256,
           fps: float | None = None) -> str:
  """Writes a PNG strip (`frames` segment-midpoint frames) or an animated GIF (all frames)."""
  ext = os.path.splitext(out)[1].lower()
  if ext == ".gif":
    step = max(1, record.num_frames // 120)  # at most ~120 GIF frames
    images = draw_frames(record, np.arange(0, record.num_frames, step), size=size)
    rate = fps or (record.fps / step if record.fps > 0 else 10.0)
    fs.save_image(out, images[0], save_all=True, append_images=images[1:], loop=0,
                  duration=int(round(1000 / rate)))
  elif ext == ".png":
    idx = sampling.segment_indices(record.num_frames, min(frames, record.num_frames))
    images = draw_frames(record, idx, size=size)
    strip = Image.new("RGB", (size * len(images), size), (255, 255, 255))
    for k, img in enumerate(images):
      strip.paste(img, (k * size, 0))
    fs.save_image(out, strip, optimize=True)  # local or gs://
  else:
    raise ValueError(f"output must end in .png or .gif, got {out!r}")
  return out


def main(argv: list[str] | None = None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("file", nargs="?", help="skeleton file of any supported format")
  ap.add_argument("-o", "--out", required=True, help="output .png (strip) or .gif (animation)")
  ap.add_argument("--format", default=None, help="force a format (see skel_llm.skeleton.formats())")
  ap.add_argument("--frames", type=int, default=8, help="panels in a PNG strip")
  ap.add_argument("--size", type=int, default=256, help="panel size in pixels")
  ap.add_argument("--fps", type=float, default=None, help="GIF frame rate (default: the file's)")
  ap.add_argument("--synthetic", default=None, help="draw a generated clip of this label instead")
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args(argv)
  if (args.file is None) == (args.synthetic is None):
    ap.error("give either FILE or --synthetic LABEL")
  if args.synthetic is not None:
    from skel_llm.synthetic import generate_clip  # only this option needs the generator
    label = int(args.synthetic) if args.synthetic.isdigit() else args.synthetic
    record = generate_clip(label, args.seed)
  else:
    record = load(args.file, format=args.format)
  print(render(record, args.out, frames=args.frames, size=args.size, fps=args.fps))


if __name__ == "__main__":
  main()
