#!/usr/bin/env bash
# Multi-host training without a scheduler: run this on each host with its own PROCESS_ID.
#
#   COORDINATOR=10.0.0.1:1234 NUM_PROCESSES=2 PROCESS_ID=0 \
#     bash launch/manual_hosts.sh configs/distill.py:paper /shared/runs/distill
#
# jax.distributed.initialize() picks these up from JAX_COORDINATOR_ADDRESS,
# JAX_NUM_PROCESSES and JAX_PROCESS_ID. WORKDIR must be on storage every host sees.
# Also works for several processes on one machine, CPU included (e.g. COORDINATOR=127.0.0.1:1234
# and XLA_FLAGS=--xla_force_host_platform_device_count=4 in each; jax uses gloo for CPU
# collectives by default): tests/train/test_multihost.py runs two that way.
set -euo pipefail
CONFIG=${1:?usage: manual_hosts.sh CONFIG WORKDIR [--config.key=value ...]}
WORKDIR=${2:?usage: manual_hosts.sh CONFIG WORKDIR [--config.key=value ...]}
shift 2
export JAX_COORDINATOR_ADDRESS=${COORDINATOR:?set COORDINATOR=host:port}
export JAX_NUM_PROCESSES=${NUM_PROCESSES:?set NUM_PROCESSES}
export JAX_PROCESS_ID=${PROCESS_ID:?set PROCESS_ID}
exec python -m skel_llm.main --distributed --config="$CONFIG" --workdir="$WORKDIR" "$@"
