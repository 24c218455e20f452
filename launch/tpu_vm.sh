#!/bin/bash
# Cloud TPU VM (pod slice): run the same command on every worker; jax.distributed.initialize()
# needs no arguments there. The workdir should be shared (e.g. a gs:// bucket or NFS).
#   launch/tpu_vm.sh my-tpu us-central2-b configs/deeplabv2.py:voc gs://bucket/runs/voc [--config.x=y ...]
set -euo pipefail
TPU=${1:?tpu name}; ZONE=${2:?zone}; CONFIG=${3:?config}; WORKDIR=${4:?workdir}; shift 4
gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command \
  "cd jaxseg && pip install -q -e . 'jax[tpu]' && JAXSEG_DISTRIBUTED=1 python -m jaxseg.main \
   --config=$CONFIG --workdir=$WORKDIR $*"
