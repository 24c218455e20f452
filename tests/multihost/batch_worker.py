"""One process of tests/multihost/test_process_slices.py: joins the job named by the JAXSEG_*
environment (as jaxseg.main does), assembles global batches from its own slices with
parallel.put_batch and prints, as JSON, the ids it read and the ids of the assembled global
batches (gathered back to every process)."""
import json
import sys

import numpy as np

from jaxseg.runner import distributed

distributed.maybe_initialize(False)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from jaxseg.data import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from jaxseg.training import parallel  # pylint: disable=g-import-not-at-top,wrong-import-position


class IdSource:
  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {'id': np.int64(i)}


def main():
  num_train, num_val, batch = (int(a) for a in sys.argv[1:4])
  mesh = parallel.make_mesh()
  gather = jax.jit(lambda x: x, out_shardings=parallel.replicated(mesh))
  pidx, pcount = jax.process_index(), jax.process_count()
  train = pipeline.TrainBatches(IdSource(num_train), lambda e, rng: e, batch, seed=3,
                                process_index=pidx, process_count=pcount)
  out = {'process': pidx, 'devices': len(jax.devices()), 'train_read': [], 'train_global': [],
         'eval_read': [], 'eval_global': []}
  for step in range(3):
    local = train[step]
    out['train_read'].append(local['id'].tolist())
    out['train_global'].append(np.asarray(gather(parallel.put_batch(local, mesh))['id']).tolist())
  for b in pipeline.eval_batches(IdSource(num_val), lambda e: e, batch, pidx, pcount,
                                 num_threads=1):
    out['eval_read'].append(b['id'][b['mask']].tolist())
    g = gather(parallel.put_batch(b, mesh))
    out['eval_global'].append(np.asarray(g['id'])[np.asarray(g['mask'])].tolist())
  print('RESULT ' + json.dumps(out), flush=True)


if __name__ == '__main__':
  main()
