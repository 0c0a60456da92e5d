# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/skel-llm/skel_llm/blob/main/colabs/quickstart.ipynb)
#
# # skel_llm quickstart: skeleton files, DrAction renders, a gradient through the renderer
#
# Loads one sample file of every format `skel_llm.skeleton.load` reads (from `DATA_DIR`; without
# one, the synthetic generator's clip of one action in each of its topologies), draws them,
# renders them with DrAction from a released-format checkpoint (the authors' file when
# `DATA_DIR` holds it, else a freshly initialised renderer written in that format) and takes a
# gradient of the frames through the renderer. The logic lives in `skel_llm.tools.notebook`.

# %%
# On Colab: clone and install the project; elsewhere run from a checkout (`pip install -e .`).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
  if not os.path.isdir("skel_llm_repo"):
    subprocess.run(["git", "clone", "--depth=1", "https://github.com/skel-llm/skel_llm",
                    "skel_llm_repo"], check=True)
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "skel_llm_repo"], check=True)
  os.chdir("skel_llm_repo")
elif not os.path.isdir("configs") and os.path.isdir("../configs"):
  os.chdir("..")  # opened from colabs/
sys.path.insert(0, os.getcwd())

# %% tags=["parameters"]
DATA_DIR = ""  # a folder of skeleton files (any formats); "" = synthetic clips
FRAMES = 6  # frames per clip
IMAGE_SIZE = 96  # rendered side in pixels

# %%
from IPython.display import display

from skel_llm.tools import notebook

records = notebook.load_samples(DATA_DIR or None)
for name, rec in records.items():
  print(f"{name}: {rec.format}, {rec.num_frames} frames, {rec.num_persons} person(s), "
        f"{'2D' if rec.is_2d else '3D'}")

# %% [markdown]
# ## The skeletons, drawn

# %%
for name, rec in records.items():
  print(name)
  display(notebook.drawing(rec, frames=FRAMES, size=96))

# %% [markdown]
# ## DrAction renders (the NTU-25 renderer transferred to each other topology)

# %%
weights = notebook.released_weights(DATA_DIR or None)
print("renderer weights:", weights)
renders = {name: notebook.render_record(rec, weights, frames=FRAMES, image_size=IMAGE_SIZE)
           for name, rec in records.items()}
for name, frames in renders.items():
  print(f"{name}: {100 * (frames.max(-1) > 1 / 255).mean():.1f}% of pixels lit")
  display(notebook.grid(frames))

# %% [markdown]
# ## A gradient through the renderer
#
# The mean brightness of the frames is differentiated with respect to the renderer's weights and
# to the joint positions; a finite difference along the position gradient checks it.

# %%
first = next(iter(records.values()))
grads = notebook.renderer_gradient(first, weights, image_size=48)
for k, v in grads.items():
  print(f"{k:28s} {v:.6g}")
assert abs(grads["poses_finite_difference"] - grads["poses_directional"]) <= (
    0.05 * abs(grads["poses_directional"]) + 1e-6), grads
