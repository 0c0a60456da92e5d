r"""Stage 3, Causal Reasoning Distillation: rationale ending "Label: <action>"; renderer +
projector + LoRA.

Demo (the default; synthetic clips whose generator writes the step-by-step rationale; a tiny
model trained from scratch, so everything trains; 6 classes with little view/placement variation
(`defaults.DEMO_CLASSES`, `DEMO_KNOBS`), 6 frames of 32^2, 400 steps of batch 8, ~5.5 min on
2 CPU cores):
  python -m skel_llm.main --config=configs/distill.py --workdir=/tmp/skel_llm/distill
prints a progress bar (loss, answer-token accuracy, ETA) and then its evaluators on 48 clips
the model never saw (measured 2026-12-02 at commit 3091248 on the idle 2-core CPU machine,
324 s with pip; deterministic at a commit, not across commits: 100 % at 02a66c1):
  [skel_llm] eval heldout: strict 81.2% / authors' rule 81.2% (0% without a Label line) on 48 clips (chance 16.7%)
  [skel_llm] eval heldout_score: likelihood top-1 81.2%, top5 93.8% on 48 clips (chance 16.7%)
  [skel_llm] eval robustness: clean 91.7%, mean drop 16.5 points
(README, "Training": the accuracy every 100 steps and the robustness curve).
Paper (InternVL3-8B, LoRA r 32 / alpha 64 / dropout 0.05, teacher rationales in a JSON file):
  python -m skel_llm.main --config=configs/distill.py:paper --workdir=/runs/distill \
      --config.init_from=/runs/disc_ft --config.data.rationale_file=/data/rationales.json
Rationales from a teacher instead of the generator (README, "Teacher rationales"):
  python -m skel_llm.teach --config=configs/distill.py --teacher=kinematic --out=/tmp/r.jsonl
  python -m skel_llm.main --config=configs/distill.py --workdir=/tmp/skel_llm/distill_kin \
      --config.data.rationale_file=/tmp/r.jsonl
One checkpoint, three tasks (reasoning 0.5, captioning 0.25, Skeleton-QA 0.25; evaluators
for recognition, captions and QA; README, "Captioning and question answering"):
  python -m skel_llm.main --config=configs/distill.py:multitask --workdir=/tmp/skel_llm/multitask
Mixed-format training (NTU-25 + SMPL-22 clips in one run, one renderer; held-out accuracy per
topology; README, "Mixed-format training"):
  python -m skel_llm.main --config=configs/distill.py:mixed --workdir=/tmp/skel_llm_mixed
All four stages chained: launch/four_stages.sh ROOT [demo|paper] (README, "The four stages").
From the pretrained, frozen tiny InternVL (seen classes for training, zero-shot on unseen ones;
README, "A pretrained MLLM for the embedded world"): `:demo_pretrained`, or
launch/four_stages.sh ROOT demo_pretrained.
"""

from skel_llm.train import defaults


def get_config(arg=None):
  c = defaults.base(arg)
  c.data.task = "reason"
  c.data.eval_task = "reason"
  if "multitask" in (arg or "").split(","):
    defaults.multitask(c)
  if "demo_pretrained" in (arg or "").split(","):
    c.trainable = (defaults.RENDERER, defaults.PROJECTOR, defaults.LORA)
    c.model.lora_rank = defaults.DEMO_PRETRAINED_LORA_RANK
    c.data.eval_task = "mqa"  # zero-shot: pick among the unseen names
  if "paper" in (arg or ""):
    c.trainable = (defaults.RENDERER, defaults.PROJECTOR, defaults.LORA)
    c.model.lora_rank = 32
    c.model.train_dropout = True
    c.init_from = "/runs/disc_ft"
    c.data.eval_task = "mqa"
  return c
