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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/skel-llm/skel_llm/blob/main/colabs/evaluate.ipynb)
#
# # Evaluate a run: held-out accuracy, per-class table, confusion matrix, robustness curve
#
# Runs the config's evaluators (`config.evals`, the same registry as `python -m
# skel_llm.evaluate`) on the latest checkpoint of `WORKDIR`; without one it first trains the
# demo there. The confusion matrix and the robustness curve are the PNGs the evaluators write.

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
WORKDIR = "/tmp/skel_llm/train_and_ask"  # a finished run of configs/distill.py
PRESET = ""  # the preset the run was trained with ("" = the demo)
STEPS = 0  # the run's step count when it was overridden

# %%
import glob

from IPython.display import Image, Markdown, display

from skel_llm.eval import registry, runner
from skel_llm.tools import notebook
from skel_llm.train import defaults, trainer


def run_config():
  c = defaults.load_config("configs/distill.py", PRESET or None)
  if STEPS:
    c.total_steps = STEPS
  return c


if not glob.glob(os.path.join(WORKDIR, "checkpoints", "*")):
  trainer.train_and_evaluate(run_config(), WORKDIR)
out_dir = os.path.join(WORKDIR, "evaluate")
step, results = runner.evaluate_run(run_config(), WORKDIR, out_dir=out_dir)
print(f"step {step} of {WORKDIR}")
display(Markdown(registry.markdown_table(results)))

# %% [markdown]
# ## Per class, and the confusion matrices (rows: truth, columns: prediction)

# %%
for name in results:
  record = notebook.evaluation(out_dir, name)
  if "per_class" in record:
    print(name)
    display(Markdown(notebook.per_class_table(record)))
  for png in sorted(glob.glob(os.path.join(out_dir, name, f"step{step}_*.png"))):
    print(os.path.basename(png))
    display(Image(png))
