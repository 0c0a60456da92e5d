#!/usr/bin/env bash
# A Cloud TPU VM (or queued resource) for skel_llm: provision, install, run on every worker, delete.
#
#   launch/gcloud_tpu.sh COMMAND --name=NAME --zone=ZONE [OPTION ...] [-- MAIN_FLAG ...]
#
# COMMAND
#   create   gcloud compute tpus tpu-vm create (or, with --queued, a queued resource, waited on
#            until ACTIVE)
#   setup    copies this checkout (its committed HEAD, `git archive`) to every worker and installs
#            requirements.txt with jax[tpu] at the version requirements.txt pins
#   run      runs `python -m skel_llm.main --distributed MAIN_FLAG ...` on all workers at once,
#            one log per worker in --logs (worker-<i>.log); when one worker fails the others are
#            stopped and the script exits with that worker's status
#   logs     the last lines of every worker's log
#   delete   deletes the TPU VM (or the queued resource)
#   up       create, setup and run
# OPTION
#   --name=NAME --zone=ZONE   the TPU (required)
#   --type=TYPE               accelerator type for create (default v5p-8; e.g. v5litepod-16, v6e-8)
#   --version=VERSION         TPU software version for create (default v2-alpha-tpuv5)
#   --project=PROJECT         passed to every gcloud command
#   --queued                  use a queued resource (capacity that waits for chips)
#   --spot                    spot capacity
#   --logs=DIR                where run writes the worker logs (default ./tpu_logs/NAME)
#   --dry_run                 print every command instead of running it (tests/launch/test_gcloud_tpu.py)
#   --workers=N               with --dry_run: the worker count a real run reads from
#                             `gcloud compute tpus tpu-vm describe` (default 1)
#
# Example (the paper's stage 3 on a v5p-16, workdir in Cloud Storage):
#   launch/gcloud_tpu.sh up --name=skel --zone=us-east5-a --type=v5p-16 -- \
#       --config=configs/distill.py:paper --workdir=gs://bucket/runs/distill \
#       --config.init_from=gs://bucket/runs/disc_ft --config.data.data_dir=gs://bucket/tfds
#   launch/gcloud_tpu.sh delete --name=skel --zone=us-east5-a
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}
fail() { echo "gcloud_tpu.sh: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
COMMAND=$1
shift
case $COMMAND in
  create | setup | run | logs | delete | up) ;;
  -h | --help | help) usage ;;
  *) fail "unknown command '$COMMAND'; expected create, setup, run, logs, delete or up" ;;
esac

NAME="" ZONE="" TYPE=v5p-8 VERSION=v2-alpha-tpuv5 PROJECT="" QUEUED=0 SPOT=0 LOGS="" DRY=0
WORKERS=1
MAIN_FLAGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --name=*) NAME=${1#*=} ;;
    --zone=*) ZONE=${1#*=} ;;
    --type=*) TYPE=${1#*=} ;;
    --version=*) VERSION=${1#*=} ;;
    --project=*) PROJECT=${1#*=} ;;
    --queued) QUEUED=1 ;;
    --spot) SPOT=1 ;;
    --logs=*) LOGS=${1#*=} ;;
    --dry_run) DRY=1 ;;
    --workers=*) WORKERS=${1#*=} ;;
    --) shift; MAIN_FLAGS=("$@"); break ;;
    *) fail "unknown option '$1' (the skel_llm.main flags go after --)" ;;
  esac
  shift
done
[[ -n $NAME ]] || fail "--name=NAME is required"
[[ -n $ZONE ]] || fail "--zone=ZONE is required"
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || fail "--workers=$WORKERS: expected a positive integer"
if [[ $COMMAND == run || $COMMAND == up ]]; then
  [[ ${#MAIN_FLAGS[@]} -gt 0 ]] || fail "$COMMAND needs the skel_llm.main flags after --, e.g. -- --config=configs/distill.py:paper --workdir=gs://bucket/run"
fi
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOGS=${LOGS:-tpu_logs/$NAME}
JAX_VERSION=$(sed -n 's/^jax==\(.*\)$/\1/p' "$REPO/requirements.txt")
[[ -n $JAX_VERSION ]] || fail "$REPO/requirements.txt has no jax==VERSION line"
COMMON=(--zone="$ZONE")
[[ -n $PROJECT ]] && COMMON+=(--project="$PROJECT")
REMOTE_DIR='~/skel_llm'
PIDFILE=/tmp/skel_llm_main.pid

# Prints (with --dry_run) or runs one command.
do_cmd() {
  if [[ $DRY == 1 ]]; then
    printf '%q ' "$@" | sed 's/ $//'
    echo
  else
    "$@"
  fi
}
tpu_ssh() {  # tpu_ssh WORKER COMMAND
  do_cmd gcloud compute tpus tpu-vm ssh "$NAME" "${COMMON[@]}" --worker="$1" --command="$2"
}

create() {
  local spot=()
  if [[ $QUEUED == 1 ]]; then
    [[ $SPOT == 1 ]] && spot=(--spot)
    do_cmd gcloud compute tpus queued-resources create "$NAME" "${COMMON[@]}" --node-id="$NAME" \
      --accelerator-type="$TYPE" --runtime-version="$VERSION" "${spot[@]}"
    # A queued resource waits for capacity: poll until its TPU is ACTIVE.
    if [[ $DRY == 1 ]]; then
      do_cmd gcloud compute tpus queued-resources describe "$NAME" "${COMMON[@]}" \
        --format='value(state.state)'
      return
    fi
    local state=""
    while [[ $state != ACTIVE ]]; do
      state=$(gcloud compute tpus queued-resources describe "$NAME" "${COMMON[@]}" \
        --format='value(state.state)')
      case $state in
        FAILED | SUSPENDED) fail "queued resource $NAME is $state" ;;
        ACTIVE) ;;
        *) echo "[gcloud_tpu] queued resource $NAME: ${state:-unknown}; waiting" >&2; sleep 30 ;;
      esac
    done
  else
    [[ $SPOT == 1 ]] && spot=(--spot)
    do_cmd gcloud compute tpus tpu-vm create "$NAME" "${COMMON[@]}" --accelerator-type="$TYPE" \
      --version="$VERSION" "${spot[@]}"
  fi
}

setup() {
  local tarball=/tmp/skel_llm_checkout_$NAME.tar.gz
  # The git-tracked files of this checkout (no workdirs, venvs or caches).
  do_cmd git -C "$REPO" archive --format=tar.gz --output="$tarball" HEAD
  do_cmd gcloud compute tpus tpu-vm scp "$tarball" "$NAME:skel_llm.tar.gz" "${COMMON[@]}" \
    --worker=all
  tpu_ssh all "rm -rf $REMOTE_DIR && mkdir -p $REMOTE_DIR && tar -xzf skel_llm.tar.gz -C $REMOTE_DIR && pip install -q -r $REMOTE_DIR/requirements.txt 'jax[tpu]==$JAX_VERSION'"
}

num_workers() {
  local ips
  ips=$(gcloud compute tpus tpu-vm describe "$NAME" "${COMMON[@]}" \
    --format='value(networkEndpoints[].ipAddress)')
  [[ -n $ips ]] || fail "gcloud compute tpus tpu-vm describe $NAME: no worker addresses"
  echo "$ips" | tr ';' '\n' | grep -c .
}

run() {
  local n main i
  if [[ $DRY == 1 ]]; then
    do_cmd gcloud compute tpus tpu-vm describe "$NAME" "${COMMON[@]}" \
      --format='value(networkEndpoints[].ipAddress)'
    n=$WORKERS
  else
    n=$(num_workers)
  fi
  main="cd $REMOTE_DIR && echo \$\$ > $PIDFILE && exec python -m skel_llm.main --distributed$(printf ' %q' "${MAIN_FLAGS[@]}")"
  if [[ $DRY == 1 ]]; then
    for ((i = 0; i < n; i++)); do
      echo "$(tpu_ssh "$i" "$main") > $LOGS/worker-$i.log 2>&1 &"
    done
    echo "# on the first failure: $(tpu_ssh all "kill \$(cat $PIDFILE) 2>/dev/null; true")"
    return
  fi
  mkdir -p "$LOGS"
  local pids=() status=0
  for ((i = 0; i < n; i++)); do
    # gcloud itself in the background (not a function's subshell): $! is its pid, so stopping
    # it stops its ssh session.
    gcloud compute tpus tpu-vm ssh "$NAME" "${COMMON[@]}" --worker="$i" --command="$main" \
      > "$LOGS/worker-$i.log" 2>&1 &
    pids+=($!)
  done
  echo "[gcloud_tpu] $n workers started; logs in $LOGS/worker-<i>.log" >&2
  local left=$n
  while [[ $left -gt 0 ]]; do
    local code=0
    wait -n "${pids[@]}" || code=$?
    left=$((left - 1))
    if [[ $code != 0 ]]; then
      status=$code
      echo "[gcloud_tpu] a worker exited with status $code; stopping the others" >&2
      tpu_ssh all "kill \$(cat $PIDFILE) 2>/dev/null; true" || true
      for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
      wait || true
      break
    fi
  done
  for ((i = 0; i < n; i++)); do
    echo "== worker $i: $LOGS/worker-$i.log"; tail -n 3 "$LOGS/worker-$i.log" || true
  done >&2
  return "$status"
}

logs() {
  local f
  for f in "$LOGS"/worker-*.log; do
    [[ -e $f ]] || fail "no worker logs in $LOGS (run writes them)"
    echo "== $f"
    tail -n 20 "$f"
  done
}

delete() {
  if [[ $QUEUED == 1 ]]; then
    do_cmd gcloud compute tpus queued-resources delete "$NAME" "${COMMON[@]}" --force --quiet
  else
    do_cmd gcloud compute tpus tpu-vm delete "$NAME" "${COMMON[@]}" --quiet
  fi
}

case $COMMAND in
  up) create; setup; run ;;
  *) "$COMMAND" ;;
esac
