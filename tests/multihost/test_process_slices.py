"""Real processes on localhost (jax.distributed over 127.0.0.1, 2 CPU devices each): every
process reads only its own slice of each batch, and parallel.put_batch assembles from those
slices the global batch a one-process run reads; padded eval batches count each example once.
(The full train / eval / checkpoint comparison is tests/multihost/test_multiprocess.py.)"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from jaxseg.data import pipeline
from jaxseg.tools.multiprocess_check import free_port

NUM_TRAIN, NUM_VAL, BATCH = 12, 10, 8


def run_job(num_processes):
  port = free_port()
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAXSEG_')}
  env.update(JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO), JAXSEG_COORDINATOR=f'127.0.0.1:{port}',
             JAXSEG_NUM_PROCESSES=str(num_processes), JAXSEG_HEARTBEAT_TIMEOUT='10',
             JAXSEG_INIT_TIMEOUT='60',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={8 // num_processes}')
  procs = [subprocess.Popen(
      [sys.executable, str(REPO / 'tests' / 'multihost' / 'batch_worker.py'),
       str(NUM_TRAIN), str(NUM_VAL), str(BATCH)], env=dict(env, JAXSEG_PROCESS_ID=str(i)),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(num_processes)]
  results = []
  try:
    for p in procs:
      stdout, stderr = p.communicate(timeout=240)
      assert p.returncode == 0, stderr[-3000:]
      results.append(json.loads(stdout.split('RESULT ', 1)[1]))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  return sorted(results, key=lambda r: r['process'])


@pytest.mark.parametrize('num_processes', [2, 4])
def test_each_process_reads_its_slice_and_put_batch_assembles_the_global_batch(num_processes):
  results = run_job(num_processes)
  assert [r['process'] for r in results] == list(range(num_processes))
  assert all(r['devices'] == 8 for r in results)
  one = pipeline.TrainBatches(_Ids(), lambda e, rng: e, BATCH, seed=3)
  for step in range(3):
    reads = [r['train_read'][step] for r in results]
    assert all(len(x) == BATCH // num_processes for x in reads)
    assert sum(reads, []) == one[step]['id'].tolist()  # in process order: the global batch
    for r in results:  # what the step sees on every process: that same global batch
      assert r['train_global'][step] == one[step]['id'].tolist()
  eval_reads = [sum(r['eval_read'], []) for r in results]
  assert sorted(sum(eval_reads, [])) == list(range(NUM_VAL))  # disjoint, each example once
  for r in results:
    assert sorted(sum(r['eval_global'], [])) == list(range(NUM_VAL))


class _Ids:
  def __len__(self):
    return NUM_TRAIN

  def __getitem__(self, i):
    return {'id': np.int64(i)}
