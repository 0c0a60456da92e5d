r"""Stage 1, render warm-up: multiple choice over the seen classes; trains renderer + projector.

Demo (tiny model from scratch, synthetic data, CPU; everything trains since nothing is
pretrained):
  python -m skel_llm.main --config=configs/warmup.py --workdir=/tmp/skel_llm/warmup
prints a progress bar with loss / accuracy / steps/s and, at the end, the held-out accuracy next
to chance. Paper (InternVL3-8B in /models/InternVL3-8B-hf, NTU-60 48/12, 8+ chips):
  python -m skel_llm.main --config=configs/warmup.py:paper --workdir=/runs/warmup
All four stages chained: launch/four_stages.sh ROOT [demo|paper] (README, "The four stages").
From the pretrained, frozen tiny InternVL (seen classes for training, zero-shot on unseen ones;
README, "A pretrained MLLM for the embedded world"): `:demo_pretrained`, or
launch/four_stages.sh ROOT demo_pretrained.
"""

from skel_llm.train import defaults


def get_config(arg=None):
  c = defaults.base(arg)
  c.data.task = "mqa"
  c.data.eval_task = "mqa"
  if "paper" in (arg or "") or "demo_pretrained" in (arg or "").split(","):
    c.trainable = (defaults.RENDERER, defaults.PROJECTOR)
  return c


def sweep(arg=None):
  """Work units of `launch/xm_launch.py --config=configs/warmup.py --sweep` (big_vision's
  hyper-parameter sweeps as a list): one {config key: value} override per work unit, each in
  its own workdir ROOT/warmup/<i>. Paper: the learning rate; demo and smoke: the seed."""
  if "paper" in (arg or ""):
    return [{"optim.lr": lr} for lr in (1e-5, 2e-5, 5e-5)]
  return [{"seed": s} for s in (0, 1)]
