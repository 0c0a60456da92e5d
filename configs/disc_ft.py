r"""Stage 2, Discriminative Finetuning: "is the action '<X>'?" -> YES/NO; renderer + projector.

X is the true class or one of its confusable seen classes (about 1:1). Confusable classes come
from `config.data.confusable_file` ({name: [top-5 names]}, e.g. the authors'
ntu60_similar_actions.json) or, when empty, from shared words in the class names.

Demo:
  python -m skel_llm.main --config=configs/disc_ft.py --workdir=/tmp/skel_llm/disc_ft
prints the YES/NO training loss and, every 100 steps and at the end, the held-out MQA accuracy
and the YES/NO evaluator (accuracy on positive and on negative questions, and their mean)
next to chance. (Four-stage demo chain: README, "The four stages".)
Paper (from the warm-up run):
  python -m skel_llm.main --config=configs/disc_ft.py:paper --workdir=/runs/disc_ft \
      --config.init_from=/runs/warmup \
      --config.data.confusable_file=/data/ntu60_similar_actions.json
All four stages chained: launch/four_stages.sh ROOT [demo|paper] (README, "The four stages").
From the pretrained, frozen tiny InternVL (seen classes for training, zero-shot on unseen ones;
README, "A pretrained MLLM for the embedded world"): `:demo_pretrained`, or
launch/four_stages.sh ROOT demo_pretrained.
"""

from skel_llm.eval import options
from skel_llm.train import defaults


def get_config(arg=None):
  c = defaults.base(arg)
  c.data.task = "yesno"
  c.data.eval_task = "mqa"
  presets = (arg or "").split(",")
  if "smoke" not in presets and "paper" not in presets:
    # What this stage trains: YES/NO about the true class and a confusable one.
    c.evals.yesno = options.evaluator("yesno", every_steps=100)
  if "demo_pretrained" in presets:
    c.trainable = (defaults.RENDERER, defaults.PROJECTOR)
  if "paper" in (arg or ""):
    c.trainable = (defaults.RENDERER, defaults.PROJECTOR)
    c.init_from = "/runs/warmup"
  return c
