r"""Stage 4, recognition refinement: multiple choice again; projector + LoRA (renderer frozen).

Demo:
  python -m skel_llm.main --config=configs/refine.py --workdir=/tmp/skel_llm/refine
Paper (3 epochs, from the distillation run):
  python -m skel_llm.main --config=configs/refine.py:paper --workdir=/runs/refine \
      --config.init_from=/runs/distill
prints the progress bar and the zero-shot accuracy on the unseen classes next to chance.
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
  if "demo_pretrained" in (arg or "").split(","):
    c.trainable = (defaults.PROJECTOR, defaults.LORA)
    c.model.lora_rank = defaults.DEMO_PRETRAINED_LORA_RANK
  if "paper" in (arg or ""):
    c.trainable = (defaults.PROJECTOR, defaults.LORA)
    c.model.lora_rank = 32
    c.model.train_dropout = True
    c.init_from = "/runs/distill"
    c.epochs = 3.0
  return c
