"""What the colab demos (`colabs/*.py`) call: sample clips, released-format renderer weights,
renders, a gradient through the renderer, inline frame grids, a run's evaluation tables.

The notebooks stay thin callers (STYLE.md); everything here is tested in
tests/tools/test_notebook.py and executed by tests/test_colabs.py.

Axis letters: T frames, P persons, J joints, n selected frames, S image side.
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from skel_llm.tools import render as render_tool

# The generator's output topologies shown side by side (`skel_llm.synthetic.formats`).
GENERATOR_TOPOLOGIES = ("ntu25", "kinect20", "smpl22", "coco17", "h36m17")
RELEASED = os.path.join("draction_reference", "draction_candidate_01.safetensors")


def on_colab() -> bool:
  import sys
  return "google.colab" in sys.modules


def sample_files(folder: str) -> dict[str, str]:
  """{format: path}: the first file (sorted walk) of each format `skeleton.load` reads there.

  Files a parser rejects are skipped (the folder may hold labels, statistics, READMEs).
  """
  from skel_llm import skeleton
  found: dict[str, str] = {}
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      try:
        fmt = skeleton.detect_format(path)
        if fmt in found:
          continue
        skeleton.load(path)
      except (ValueError, OSError):
        continue
      found[fmt] = path
  if not found:
    raise FileNotFoundError(f"{folder}: no skeleton file of any format {skeleton.formats()}")
  return found


def load_samples(folder: str | None, *, label: str = "bow", seed: int = 0) -> dict:
  """{name: SkeletonRecord}: one sample file per format in `folder`, or, without a folder, one
  synthetic clip of `label` in each of `GENERATOR_TOPOLOGIES` (the same motion)."""
  from skel_llm import skeleton, synthetic
  if folder:
    return {f"{fmt}: {os.path.basename(p)}": skeleton.load(p)
            for fmt, p in sample_files(folder).items()}
  return {f"synthetic {label} ({t})": synthetic.generate_clip(label, seed, topology=t)
          for t in GENERATOR_TOPOLOGIES}


def released_weights(folder: str | None) -> str:
  """A released-format DrAction checkpoint: the authors' file in `folder`
  (draction_reference/draction_candidate_01.safetensors) when there, else a freshly initialised
  DrAction written in the release format (`checkpoint.export_released`) to a temporary folder."""
  if folder and os.path.isfile(os.path.join(folder, RELEASED)):
    return os.path.join(folder, RELEASED)
  from flax import nnx

  from skel_llm.render import checkpoint, module
  path = os.path.join(tempfile.mkdtemp(prefix="draction_"), "draction_fresh.safetensors")
  checkpoint.export_released(module.DrAction("ntu25", rngs=nnx.Rngs(0)).weights(), path,
                             param_dtype="float32")
  return path


def render_record(record, weights_path: str, *, frames: int = 6, image_size: int = 96
                  ) -> np.ndarray:
  """float32[n, S, S, 3]: DrAction (transferred to the record's topology) on one record."""
  poses, vels, topo = render_tool.record_clip(record, frames)
  out, _ = render_tool.render_clip(poses, vels, topo, kind="draction", weights_path=weights_path,
                                   image_size=image_size, fov_deg=60.0, dense=False)
  return out


def renderer_gradient(record, weights_path: str, *, frames: int = 4, image_size: int = 64
                      ) -> dict[str, float]:
  """Gradients of the frames' mean brightness through DrAction: the L2 norm for each weight
  group and for the joint positions, and a central finite difference along the position
  gradient's direction beside the directional derivative it should equal."""
  import jax
  import jax.numpy as jnp

  from skel_llm.render import renderer
  poses, vels, topo = render_tool.record_clip(record, frames)
  weights = jax.tree.map(jnp.asarray, render_tool.draction_weights(weights_path, topo))

  def brightness(w, p):
    return jnp.mean(renderer.render(w, p, jnp.asarray(vels), image_size=image_size, dense=True))

  g_w, g_p = jax.grad(brightness, argnums=(0, 1))(weights, jnp.asarray(poses))
  out = {f"params/{k}": float(jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(v))))
         for k, v in g_w["params"].items()}
  out["poses"] = float(jnp.linalg.norm(g_p))
  direction = g_p / jnp.maximum(jnp.linalg.norm(g_p), 1e-12)
  h = 1e-3
  fd = (brightness(weights, poses + h * direction) - brightness(weights, poses - h * direction))
  out["poses_directional"] = float(jnp.sum(g_p * direction))
  out["poses_finite_difference"] = float(fd / (2 * h))
  return out


def grid(frames, columns: int | None = None):
  """PIL image of float32[n, S, S, 3] frames (or several clips' frames stacked) in a grid."""
  frames = np.asarray(frames, np.float32)
  if frames.ndim == 5:  # [clips, n, S, S, 3]: one row per clip
    columns = frames.shape[1]
    frames = frames.reshape((-1,) + frames.shape[2:])
  return render_tool.strip_image(frames, columns)


def drawing(record, frames: int = 6, size: int = 128):
  """PIL strip of the record's skeleton drawn at `frames` segment-midpoint frames."""
  from PIL import Image

  from skel_llm.skeleton import sampling
  from skel_llm.tools import show
  idx = sampling.segment_indices(record.num_frames, min(frames, record.num_frames))
  images = show.draw_frames(record, idx, size=size)
  strip = Image.new("RGB", (size * len(images), size), (255, 255, 255))
  for k, img in enumerate(images):
    strip.paste(img, (k * size, 0))
  return strip


def training_curve(workdir: str) -> list[tuple[int, float]]:
  """[(step, loss)] logged by a run (its TensorBoard events)."""
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(os.path.join(workdir, "tensorboard"),
                                           size_guidance={event_accumulator.SCALARS: 0})
  acc.Reload()
  if "loss" not in acc.Tags().get("scalars", []):
    raise FileNotFoundError(f"{workdir}/tensorboard has no 'loss' scalar; is it a skel_llm run?")
  return [(e.step, e.value) for e in acc.Scalars("loss")]


def evaluation(out_dir: str, name: str) -> dict:
  """An evaluator's newest record (`<out_dir>/<name>.json`: scalars, per-class, confusion)."""
  path = os.path.join(out_dir, f"{name}.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} does not exist; run the evaluators first")
  with open(path) as f:
    return json.load(f)


def per_class_table(record: dict) -> str:
  """Markdown table of an evaluation record's per-class accuracies (every rule it reports)."""
  per_class = record["per_class"]
  rules = list(per_class)
  names = list(per_class[rules[0]])
  lines = ["| class | " + " | ".join(rules) + " |", "|---" * (len(rules) + 1) + "|"]
  for n in names:
    lines.append(f"| {n} | " + " | ".join(f"{100 * per_class[r][n]:.1f}" for r in rules) + " |")
  return "\n".join(lines)
