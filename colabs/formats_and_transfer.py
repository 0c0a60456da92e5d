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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/skel-llm/skel_llm/blob/main/colabs/formats_and_transfer.ipynb)
#
# # One action in every topology, rendered by one renderer transferred across topologies
#
# The synthetic generator writes the same motion (same body, timing and camera) as NTU-25,
# Kinect v1 (20 joints), SMPL-22 (HumanML3D), COCO-17 (image pixels) and Human3.6M-17. One
# DrAction renderer trained on NTU-25 (the authors' released checkpoint when `DATA_DIR` holds
# it) is transferred to each topology (`skel_llm.render.checkpoint.transfer`: the MLPs are
# shared, the per-Gaussian features resampled along the new skeleton's joints and bones). A BVH
# file's skeleton, from `DATA_DIR`, gets the same treatment: its topology is the file's own
# hierarchy (the generator writes no BVH, so that clip is another motion, CMU mocap).

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
ACTION = "bow"  # a synthetic class name (skel_llm.synthetic.CLASS_NAMES)
DATA_DIR = ""  # a folder with the released renderer and a .bvh file; "" = none
FRAMES = 6
IMAGE_SIZE = 96

# %%
import glob

import numpy as np
from IPython.display import display

from skel_llm import skeleton
from skel_llm.render import checkpoint
from skel_llm.tools import notebook
from skel_llm.tools import render as render_tool

clips = notebook.load_samples(None, label=ACTION)
bvh = sorted(glob.glob(os.path.join(DATA_DIR, "**", "*.bvh"), recursive=True)) if DATA_DIR else []
if bvh:
  clips[f"bvh: {os.path.basename(bvh[0])}"] = skeleton.load(bvh[0])
weights = notebook.released_weights(DATA_DIR or None)
released = checkpoint.load_released(weights)
print("renderer:", weights)

# %%
rows = []
for name, rec in clips.items():
  _, _, topo = render_tool.record_clip(rec, FRAMES)
  w = render_tool.draction_weights(weights, topo)
  shared = all(np.array_equal(np.asarray(w["params"]["appearance"][k]),
                              np.asarray(released["params"]["appearance"][k]))
               for k in released["params"]["appearance"])
  frames = notebook.render_record(rec, weights, frames=FRAMES, image_size=IMAGE_SIZE)
  print(f"{name}: {rec.topology.num_joints} joints -> {np.shape(w['params']['features'])[0]} "
        f"Gaussians, appearance MLP shared with NTU-25: {shared}, "
        f"{100 * (frames.max(-1) > 1 / 255).mean():.1f}% of pixels lit")
  assert shared
  rows.append(frames)
display(notebook.grid(np.stack(rows)))
