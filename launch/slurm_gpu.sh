#!/usr/bin/env bash
# Multi-host training on a GPU cluster with Slurm: one process per node, all local GPUs per
# process. jax.distributed.initialize() reads SLURM_* variables (coordinator = first node).
#
#   sbatch --nodes=2 --gpus-per-node=8 launch/slurm_gpu.sh configs/distill.py:paper /runs/distill \
#     --config.init_from=/runs/disc_ft
#
#SBATCH --job-name=skel_llm
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
CONFIG=${1:?usage: slurm_gpu.sh CONFIG WORKDIR [--config.key=value ...]}
WORKDIR=${2:?usage: slurm_gpu.sh CONFIG WORKDIR [--config.key=value ...]}
shift 2
# Preemption: Slurm sends SIGTERM before killing; the trainer saves a checkpoint and exits,
# and the requeued job resumes from WORKDIR automatically.
srun --kill-on-bad-exit=1 python -m skel_llm.main --distributed --config="$CONFIG" \
  --workdir="$WORKDIR" "$@"
