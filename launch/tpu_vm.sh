#!/bin/bash
# Cloud TPU VM / pod slice (e.g. v4-32: 4 workers x 4 chips): the same command on every worker
# over `gcloud ... ssh --worker=all`; jax.distributed.initialize() needs no arguments there.
#   launch/tpu_vm.sh my-tpu us-central2-b configs/deeplabv2.py:voc gs://bucket/runs/voc [--config.x=y ...]
#   SETUP=1 launch/tpu_vm.sh ...    # first `pip install -e . 'jax[tpu]'` in the checkout
#   DRY_RUN=1 launch/tpu_vm.sh ...  # print the gcloud command and the worker command, run nothing
# The checkout must be at $JAXSEG_REMOTE_DIR (default ~/jaxseg) on every worker; the workdir must
# be shared (a gs:// bucket or NFS): Orbax writes one shard per worker there.
# --config.batch_size is the GLOBAL batch: it must split over all chips of the slice.
set -euo pipefail
usage='usage: tpu_vm.sh TPU ZONE CONFIG WORKDIR [--config.field=value ...]'
TPU=${1:?$usage}; ZONE=${2:?$usage}; CONFIG=${3:?$usage}; WORKDIR=${4:?$usage}; shift 4
REMOTE_DIR=${JAXSEG_REMOTE_DIR:-'~/jaxseg'}
HEARTBEAT=${JAXSEG_HEARTBEAT_TIMEOUT:-100}
# Quoted once here, so arguments with spaces or quotes reach the workers unchanged.
run="JAXSEG_DISTRIBUTED=1 JAXSEG_HEARTBEAT_TIMEOUT=$HEARTBEAT python -m jaxseg.main"
for arg in --config="$CONFIG" --workdir="$WORKDIR" "$@"; do run+=" ${arg@Q}"; done
remote="cd $REMOTE_DIR && "
if [[ "${SETUP:-0}" == 1 ]]; then remote+="pip install -q -e . 'jax[tpu]' && "; fi
remote+="$run"
cmd=(gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "$remote")
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  echo "worker command: $remote"
  echo "command: ${cmd[*]@Q}"
  exit 0
fi
exec "${cmd[@]}"
