#!/usr/bin/env bash
# Multi-host training on a Cloud TPU pod slice: the same command runs on every host; JAX finds
# the coordinator, process count and process id from the TPU metadata.
#
#   TPU=my-v5p-64 ZONE=us-east5-a CONFIG=configs/distill.py:paper WORKDIR=gs://bucket/runs/distill \
#     bash launch/tpu_pod.sh [--config.key=value ...]
#
# The mesh comes from the config (config.mesh, e.g. data=-1 fsdp=8 tensor=4): no code changes.
# This assumes the workers already hold the checkout at REPO_DIR; launch/gcloud_tpu.sh also
# provisions the TPU, copies and installs the code, keeps one log per worker and stops all
# workers when one fails.
set -euo pipefail
: "${TPU:?set TPU to the pod slice name}" "${ZONE:?set ZONE}" "${CONFIG:?set CONFIG}" "${WORKDIR:?set WORKDIR}"
REPO_DIR=${REPO_DIR:-~/skel_llm}
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "
  cd $REPO_DIR && python -m skel_llm.main --distributed --config=$CONFIG --workdir=$WORKDIR $*
"
