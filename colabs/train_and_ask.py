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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/skel-llm/skel_llm/blob/main/colabs/train_and_ask.ipynb)
#
# # Train the embedded demo, then ask it about clips it never saw
#
# Trains `configs/distill.py` (the README's demo: a tiny InternVL-shaped model from scratch on
# synthetic clips whose generator writes the step-by-step rationale; ~5 min on 2 CPU cores),
# plots the loss, shows the frames the renderer made at the start and at the end of training,
# then asks the trained model with `skel_llm.serving.predictor` (what `python -m
# skel_llm.predict` runs) about held-out synthetic clips and, with `DATA_DIR`, real NTU files.

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
WORKDIR = "/tmp/skel_llm/train_and_ask"  # the run folder (resumed when it holds a checkpoint)
PRESET = ""  # "" = the demo; "smoke" = seconds (tests)
STEPS = 0  # 0 = the preset's step count
DATA_DIR = ""  # a folder with NTU .skeleton files to ask about too
MAX_NEW_TOKENS = 160  # longest reply

# %%
import glob

import matplotlib.pyplot as plt
from IPython.display import Image, display

from skel_llm.serving import predictor
from skel_llm.tools import notebook
from skel_llm.train import defaults, trainer

config = defaults.load_config("configs/distill.py", PRESET or None)
if STEPS:
  config.total_steps = STEPS
result = trainer.train_and_evaluate(config, WORKDIR)
print({k: round(v, 4) for k, v in result["train"].items()})

# %% [markdown]
# ## The loss

# %%
steps, losses = zip(*notebook.training_curve(WORKDIR))
plt.figure(figsize=(5, 3))
plt.plot(steps, losses)
plt.xlabel("step")
plt.ylabel("loss")
plt.yscale("log")
plt.show()

# %% [markdown]
# ## What the renderer made of the first training clips, before and after training

# %%
for name in ("frames_start", "frames_end"):
  print(name)
  display(Image(os.path.join(WORKDIR, f"{name}.png")))

# %% [markdown]
# ## Ask the model about clips it never saw
#
# `synthetic:<class>:<k>` is held-out clip k of the run's own generator settings; seeds from
# 1000 on lie beyond every clip the evaluators read.

# %%
pred = predictor.Predictor.load(config, WORKDIR, max_new_tokens=MAX_NEW_TOKENS)
specs = [f"synthetic:{name}:{1000 + i}" for i, name in enumerate(pred.candidates[:6])]
if DATA_DIR:
  specs += sorted(glob.glob(os.path.join(DATA_DIR, "**", "*.skeleton"), recursive=True))[:3]
answers = [pred.ask(spec, score=True) for spec in specs]
pred.close()
for a in answers:
  print(a.line())
right = sum(a.label == a.title.split(" (")[0].removeprefix("synthetic ")
            for a in answers if a.input.startswith("synthetic:"))
print(f"{right} of {len(pred.candidates[:6])} synthetic clips named right")

# %%
display(notebook.grid([a.frames for a in answers]))
