#!/usr/bin/env bash
# The four training stages (docs/method.md §4) chained in one command, each starting from
# the previous stage's last checkpoint:
#
#   ROOT/warmup   configs/warmup.py    1 render warm-up: multiple choice (MQA)
#   ROOT/disc_ft  configs/disc_ft.py   2 Discriminative Finetuning: YES/NO
#   ROOT/distill  configs/distill.py   3 Causal Reasoning Distillation: rationale + "Label:"
#   ROOT/refine   configs/refine.py    4 recognition refinement: MQA
#
# Stage N runs `python -m skel_llm.main --config=configs/<stage>.py:PRESET
# --workdir=ROOT/<stage> [FLAG ...] --config.init_from=ROOT/<stage N-1>`; stage 1 keeps the
# preset's init_from (paper: hf:/models/InternVL3-8B-hf; demo: a fresh tiny model). Which
# parameters train in each stage is the config's `trainable` (paper and demo_pretrained:
# renderer + projector, the same, + LoRA, projector + LoRA, with the vision tower and the
# base LLM frozen; demo and smoke: everything, as their tiny model starts from scratch).
#
# Usage: launch/four_stages.sh ROOT [PRESET] [FLAG ...]
#   PRESET  demo (default: synthetic data, tiny model from scratch, CPU), demo_pretrained (the
#           same tiny model pretrained on stick figures, skel_llm/models/assets/
#           tiny_internvl_pretrained, frozen as in the paper; trained on seen classes,
#           evaluated zero-shot on the 8 unseen verb/part combinations), paper, smoke (tests)
#   FLAG    --config.key=value (or --distributed) goes to every stage;
#           STAGE:--config.key=value (STAGE = warmup, disc_ft, distill or refine) to that stage
#           only. The chaining init_from of stages 2-4 always wins over a FLAG.
#
# Demo (about 4 x 6 min on 2 CPU cores):
#   launch/four_stages.sh /tmp/skel_llm/four_stages
# From the pretrained, frozen tiny InternVL (README, "A pretrained MLLM for the embedded world"):
#   launch/four_stages.sh /tmp/skel_llm/four_stages_pretrained demo_pretrained
# Paper (InternVL3-8B in /models/InternVL3-8B-hf, NTU-60 48/12 built with data_prep/, 8+ chips).
# Stage 2 takes the confusable classes and stage 3 the teacher rationales from your files:
#   launch/four_stages.sh /runs paper \
#       --config.data.data_dir=/data/tensorflow_datasets \
#       disc_ft:--config.data.confusable_file=/data/ntu60_similar_actions.json \
#       distill:--config.data.rationale_file=/data/rationales.json
# (Without the confusable file stage 2 pairs classes that share words in their names; without the
# rationale file stage 3 learns the dataset's own descriptions.) Another model folder:
#   warmup:--config.init_from=hf:/models/X --config.text.tokenizer=/models/X
# Multi-host: run the same command on every host with --distributed and ROOT on storage every
# host sees (see launch/manual_hosts.sh for the environment).
#
# Resumable: a stage whose workdir holds result.json (written by trainer.train_and_evaluate after
# training, evaluation and export) is skipped; an unfinished stage resumes from its own latest
# checkpoint. Re-running with other flags does not redo finished stages: delete
# ROOT/<stage>/result.json (and its checkpoints, to train again from the previous stage).
# The script stops at the first failing stage; every *_file=PATH flag is checked before stage 1.
# ROOT may be a bucket (gs://bucket/runs): the stages write there through skel_llm.fs, and this
# script asks `python -m skel_llm.fs isfile` whether a gs:// result.json or *_file exists.
set -euo pipefail

usage="usage: four_stages.sh ROOT [demo|demo_pretrained|paper|smoke] [--config.key=value | STAGE:--config.key=value ...]"
ROOT=${1:?$usage}
shift
PRESET=demo
if [[ $# -gt 0 && $1 != -* && $1 != *:* ]]; then
  PRESET=$1
  shift
fi
STAGES=(warmup disc_ft distill refine)
ARGS=("$@")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
# Whether a path exists as a file, local or on object storage (gs://...).
is_file() {
  if [[ $1 == *://* ]]; then
    "$PYTHON" -m skel_llm.fs isfile "$1"
  else
    [[ -f $1 ]]
  fi
}
if [[ $ROOT == *://* ]]; then
  ROOT=${ROOT%/}  # a bucket has no folders to create; the stages write their own objects
else
  mkdir -p "$ROOT"
  ROOT=$(cd "$ROOT" && pwd)
fi

for arg in "${ARGS[@]}"; do
  flag=$arg
  case $arg in
    warmup:* | disc_ft:* | distill:* | refine:*) flag=${arg#*:} ;;
  esac
  if [[ $flag != --* ]]; then
    echo "four_stages.sh: argument '$arg' is neither --flag nor STAGE:--flag with STAGE one of" \
      "${STAGES[*]}" >&2
    exit 2
  fi
  if [[ $flag == --config.*_file=?* ]]; then
    file=${flag#*=}
    if ! is_file "$file"; then
      echo "four_stages.sh: $flag: no such file" >&2
      exit 2
    fi
  fi
done

# The flags of one stage, in command-line order, into STAGE_FLAGS.
stage_flags() {
  STAGE_FLAGS=()
  local arg
  for arg in "${ARGS[@]}"; do
    case $arg in
      "$1":*) STAGE_FLAGS+=("${arg#*:}") ;;
      warmup:* | disc_ft:* | distill:* | refine:*) ;;
      *) STAGE_FLAGS+=("$arg") ;;
    esac
  done
}

previous=""
for i in "${!STAGES[@]}"; do
  stage=${STAGES[$i]}
  workdir=$ROOT/$stage
  if is_file "$workdir/result.json"; then
    echo "[four_stages] stage $((i + 1))/4 $stage: $workdir/result.json exists; skipped"
    previous=$workdir
    continue
  fi
  stage_flags "$stage"
  cmd=("$PYTHON" -m skel_llm.main "--config=$REPO/configs/$stage.py:$PRESET"
       "--workdir=$workdir" "${STAGE_FLAGS[@]}")
  if [[ -n $previous ]]; then
    cmd+=("--config.init_from=$previous")
  fi
  echo "[four_stages] stage $((i + 1))/4 $stage: $(printf '%q ' "${cmd[@]}")"
  "${cmd[@]}"
  previous=$workdir
done
echo "[four_stages] done: $ROOT/{$(IFS=,; echo "${STAGES[*]}")}/result.json"
