"""Render a skeleton clip to a PNG strip and an animated GIF.

    python -m skel_llm.tools.render synthetic:handshake:1 --renderer velocity --out /tmp/clip
    python -m skel_llm.tools.render S001C003P008R002A058.skeleton \
        --weights draction_candidate_01.safetensors --out /tmp/clip

write /tmp/clip.png (the selected frames side by side) and /tmp/clip.gif. NTU RGB+D
`.skeleton` files come from the dataset's download page (rose1.ntu.edu.sg/dataset/
actionRecognition), the DrAction weights from the authors' release
(github.com/wangzy01/SkeletonLLM).
INPUT is any file `skel_llm.skeleton.load` reads, a reference `.npz` holding
already-selected `poses`/`vels`, or `synthetic:<class name or index>[:seed]`.
`--renderer` picks DrAction (needs --weights; other topologies receive the
NTU appearance through `checkpoint.transfer`) or a fixed baseline.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from skel_llm import fs
from skel_llm.render import baselines, camera, checkpoint, renderer
from skel_llm.skeleton import sampling, topology as topology_lib


def read_clip(spec: str, frames: int, persons: int = 2, placement: str = "auto"):
  """(poses float32[n, P, J, 3], vels, topology name, title) for an INPUT argument.

  Files are placed in front of the camera by `placement` (`skel_llm.render.camera.place`).
  """
  if spec.startswith("synthetic:"):
    from skel_llm.synthetic import generator

    parts = spec.split(":")
    label = int(parts[1]) if parts[1].isdigit() else parts[1]
    seed = int(parts[2]) if len(parts) > 2 else 0
    record = generator.generate_clip(label, seed)
    title = f"synthetic {record.metadata.get('label', label)} (seed {seed})"
  elif spec.endswith(".npz"):
    with fs.local_copy(spec) as local, np.load(local) as data:  # local or gs://
      if "poses" not in data.files or "vels" not in data.files:
        raise ValueError(f"{spec}: expected arrays 'poses' and 'vels' [n, P, J, 3]")
      return data["poses"], data["vels"], "ntu25", fs.path(spec).name
  else:
    from skel_llm.skeleton import load

    kwargs = {"bodies": "first"} if spec.endswith(".skeleton") else {}
    record = load(spec, **kwargs)
    title = fs.path(spec).name
  poses, vels, topo = record_clip(record, frames, persons, placement)
  return poses, vels, topo, title


def record_clip(record, frames: int, persons: int = 2, placement: str = "auto"):
  """(poses float32[n, P, J, 3], vels, topology) of a `SkeletonRecord`: placed in camera metres
  (`camera.place` with `placement`), P persons (cut or zero-padded), n segment-midpoint frames. The topology is the
  registry name, or the file's own `Topology` for a BVH skeleton."""
  topo = record.topology
  pos = camera.place(record.positions, placement, topo, is_2d=record.is_2d)
  if pos.shape[1] > persons:
    pos = pos[:, :persons]
  elif pos.shape[1] < persons:
    pos = np.concatenate([pos, np.zeros((pos.shape[0], persons - pos.shape[1]) + pos.shape[2:],
                                        np.float32)], axis=1)
  poses, vels, _ = sampling.select_frames(pos, frames)
  name = topo.name if topo.name in topology_lib.names() else topo
  return poses.astype(np.float32), vels.astype(np.float32), name


def draction_weights(path: str, topology: str) -> dict:
  """Released weights (a local or gs:// file), transferred to `topology` when it is not
  NTU-25."""
  weights = checkpoint.load_released(checkpoint.local_release(path))
  if topology == "ntu25":
    return weights
  return checkpoint.transfer_to(weights, topology)


def render_clip(poses, vels, topology: str, *, kind: str, weights_path: str | None,
                image_size: int, fov_deg: float, dense: bool) -> tuple[np.ndarray, int]:
  """(frames float32[n, S, S, 3], total tiled-path overflow) of one clip."""
  if kind == "draction":
    if not weights_path:
      raise ValueError("--renderer draction needs --weights FILE.safetensors")
    w = draction_weights(weights_path, topology)
    frames, overflow, _ = renderer.render_with_stats(w, poses, vels, image_size=image_size,
                                                     fov_deg=fov_deg, dense=dense)
    return np.asarray(frames), int(np.asarray(overflow).sum())
  if kind == "velocity":
    return np.asarray(baselines.render_velocity_colour(
        poses, vels, image_size=image_size, fov_deg=fov_deg, topology=topology, dense=dense)), 0
  if kind == "stick":
    return np.asarray(baselines.render_stick_figure(poses, image_size=image_size,
                                                    fov_deg=fov_deg, topology=topology)), 0
  raise ValueError(f"unknown renderer {kind!r}")


def to_uint8(frames: np.ndarray) -> np.ndarray:
  return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_strip(frames: np.ndarray, path: str, columns: int | None = None, gap: int = 2) -> None:
  """PNG of float32[n, S, S, 3] frames in a grid (one row by default), grey gaps between."""
  fs.save_image(path, strip_image(frames, columns, gap))  # local or gs://


def strip_image(frames: np.ndarray, columns: int | None = None, gap: int = 2):
  """PIL image of float32[n, S, S, 3] frames in a grid (one row by default)."""
  from PIL import Image

  n, s = frames.shape[:2]
  cols = columns or n
  rows = -(-n // cols)
  canvas = np.full((rows * s + (rows - 1) * gap, cols * s + (cols - 1) * gap, 3), 64, np.uint8)
  for i, f in enumerate(to_uint8(frames)):
    r, c = divmod(i, cols)
    canvas[r * (s + gap):r * (s + gap) + s, c * (s + gap):c * (s + gap) + s] = f
  return Image.fromarray(canvas)


def save_gif(frames: np.ndarray, path: str, ms_per_frame: int = 150) -> None:
  from PIL import Image

  images = [Image.fromarray(f) for f in to_uint8(frames)]
  fs.save_image(path, images[0], save_all=True, append_images=images[1:], duration=ms_per_frame,
                loop=0)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("input", help="skeleton file, reference .npz, or synthetic:<label>[:seed]")
  parser.add_argument("--weights", help="released-format .safetensors (DrAction)")
  parser.add_argument("--out", required=True, help="output prefix: writes PREFIX.png, PREFIX.gif")
  parser.add_argument("--renderer", choices=("draction", "velocity", "stick"), default="draction")
  parser.add_argument("--size", type=int, default=448, help="image side in pixels")
  parser.add_argument("--frames", type=int, default=12)
  parser.add_argument("--fov", type=float, default=60.0)
  parser.add_argument("--placement", choices=camera.RULES, default="auto",
                      help="camera placement of a file's joints (skel_llm.render.camera.place)")
  parser.add_argument("--columns", type=int, default=None, help="frames per PNG row")
  parser.add_argument("--dense", action="store_true", help="exact dense path (slow)")
  args = parser.parse_args(argv)
  poses, vels, topo, title = read_clip(args.input, args.frames, placement=args.placement)
  frames, overflow = render_clip(poses, vels, topo, kind=args.renderer, weights_path=args.weights,
                                 image_size=args.size, fov_deg=args.fov, dense=args.dense)
  save_strip(frames, args.out + ".png", args.columns)
  save_gif(frames, args.out + ".gif")
  nonblack = float(np.mean(frames.max(-1) > 1 / 255))
  print(f"{title}: {topo}, {frames.shape[0]} frames x {args.size}^2, renderer {args.renderer}, "
        f"non-black {100 * nonblack:.1f}%, tiled overflow {overflow} -> {args.out}.png, "
        f"{args.out}.gif")
  if overflow:
    print(f"warning: {overflow} (tile, Gaussian) pairs dropped; frames are not exact",
          file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
