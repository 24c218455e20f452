"""Run by test_parallel.py in a subprocess with 8 fake CPU devices.

Trains a tiny DeepLab v2 (trainable BatchNorm, so cross-device statistics matter) for
two steps (a) on one device, (b) jit over an 8-device `data` mesh, (c) under jax.pmap with
an axis name, and prints the largest relative differences as JSON.
"""
import json

import jax
import numpy as np

from jaxseg.config_files import load_config
from jaxseg.data import pipeline, sources
from jaxseg.methods import build_method
from jaxseg.training import parallel


def rel_err(a, b):
  errs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x, np.float64) - y)) /
                                         (np.max(np.abs(np.asarray(y, np.float64))) + 1e-12)), a, b)
  return max(jax.tree.leaves(errs))


def main():
  assert jax.device_count() == 8, jax.devices()
  c = load_config('configs/deeplabv2.py:smoke')
  c.batch_size = 8
  c.dataset.image_size = (33, 33)
  c.dataset.augment.crop_size = (33, 33)
  c.model.msc = False  # MSC adds compile time, not parallel semantics
  src = sources.make_source(c.dataset, 'train')
  single = build_method(c, src.meta)
  batches = pipeline.TrainBatches(src, single.train_transform(), 8, seed=0)
  data = [batches[0], batches[1]]
  # On the host: the mesh step donates its input, which must not delete this copy.
  state0 = jax.device_get(jax.jit(single.init_state)(jax.random.PRNGKey(0), data[0]))
  eval_batch = dict(data[0], mask=np.array([True] * 7 + [False]))

  # (a) one device
  step = jax.jit(single.train_step)
  s, losses_a = state0, []
  for b in data:
    s, m = step(s, b)
    losses_a.append(float(m['loss']))
  state_a = jax.device_get(s)
  cm_a = np.asarray(jax.jit(single.eval_step)(state_a, eval_batch)['confusion'])

  # (b) jit over an 8-device mesh
  mesh = parallel.make_mesh()
  step_b = parallel.jit_step(single.train_step, mesh)
  s, losses_b = parallel.put_replicated(state0, mesh), []
  for b in data:
    s, m = step_b(s, parallel.put_batch(b, mesh))
    losses_b.append(float(m['loss']))
  state_b = jax.device_get(s)
  cm_b = np.asarray(parallel.jit_eval(single.eval_step, mesh)(
      parallel.put_replicated(state_b, mesh), parallel.put_batch(eval_batch, mesh))['confusion'])

  # (c) pmap with an axis name
  pm = build_method(c, src.meta, axis_name='batch')
  step_c = parallel.pmap_step(pm.train_step, 'batch')
  s, losses_c = parallel.replicate(state0, 8), []
  for b in data:
    s, m = step_c(s, parallel.shard_for_pmap(b, 8))
    losses_c.append(float(np.asarray(m['loss'])[0]))
  state_c = parallel.unreplicate(s)
  cm_c = np.asarray(jax.pmap(pm.eval_step, axis_name='batch')(
      parallel.replicate(state_c, 8), parallel.shard_for_pmap(eval_batch, 8))['confusion'])[0]

  print(json.dumps({
      'losses': [losses_a, losses_b, losses_c],
      'params_jit_vs_single': rel_err(state_b.params, state_a.params),
      'params_pmap_vs_single': rel_err(state_c.params, state_a.params),
      'stats_jit_vs_single': rel_err(state_b.batch_stats, state_a.batch_stats),
      'stats_pmap_vs_single': rel_err(state_c.batch_stats, state_a.batch_stats),
      'cm_equal': bool(np.array_equal(cm_a, cm_b) and np.array_equal(cm_a, cm_c)),
      'cm_total': int(cm_a.sum()),
      'pixels_expected': int(np.sum(eval_batch['label'][:7] != 255)),  # padding example excluded
  }))


if __name__ == '__main__':
  main()
