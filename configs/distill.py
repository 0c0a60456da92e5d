r"""Stage 3, Causal Reasoning Distillation: rationale ending "Label: <action>"; renderer +
projector + LoRA.

Demo (the default; synthetic clips whose generator writes the step-by-step rationale; a tiny
model trained from scratch, so everything trains; 6 classes with little view/placement variation
(`defaults.DEMO_CLASSES`, `DEMO_KNOBS`), 6 frames of 32^2, 400 steps of batch 8, ~5.5 min on
2 CPU cores):
  python -m skel_llm.main --config=configs/distill.py --workdir=/tmp/skel_llm/distill
prints a progress bar (loss, answer-token accuracy, steps/s) and then
  [skel_llm] held-out accuracy 70.8% on 48 clips (6 candidates; chance 16.7%)
where the accuracy is that of the generated `Label:` line on clips the model never saw
(measured 2026-12-01 on the 2-core CPU machine; 83.3% on 2026-11-24 before the renderer's
frame loop changed its float summation order: expect 70-85%).
Paper (InternVL3-8B, LoRA r 32 / alpha 64 / dropout 0.05, teacher rationales in a JSON file):
  python -m skel_llm.main --config=configs/distill.py:paper --workdir=/runs/distill \
      --config.init_from=/runs/disc_ft --config.data.rationale_file=/data/rationales.json
Rationales from a teacher instead of the generator (README, "Teacher rationales"):
  python -m skel_llm.teach --config=configs/distill.py --teacher=kinematic --out=/tmp/r.jsonl
  python -m skel_llm.main --config=configs/distill.py --workdir=/tmp/skel_llm/distill_kin \
      --config.data.rationale_file=/tmp/r.jsonl
All four stages chained: launch/four_stages.sh ROOT [demo|paper] (README, "The four stages").
"""

from skel_llm.train import defaults


def get_config(arg=None):
  c = defaults.base(arg)
  c.data.task = "reason"
  c.data.eval_task = "reason"
  if "paper" in (arg or ""):
    c.trainable = (defaults.RENDERER, defaults.PROJECTOR, defaults.LORA)
    c.model.lora_rank = 32
    c.model.train_dropout = True
    c.init_from = "/runs/disc_ft"
    c.data.eval_task = "mqa"
  return c
