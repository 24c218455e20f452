"""Run by test_parallel.py in a subprocess with N fake CPU devices (XLA_FLAGS).

Trains a tiny DeepLab v2 (trainable BatchNorm, so cross-device statistics matter) for
two steps (a) on one device, (b) jit over an N-device `data` mesh, (c) under jax.pmap with
an axis name, and prints as JSON how far (b) and (c) are from (a).

Parameters are compared by their UPDATE (state after two steps minus the initial state), with
the error measured against the scale of the whole update: max |upd_x - upd_a| / max |upd_a|,
both maxima over every leaf. Float32 reduction-order differences in a gradient are of the
order eps * sum |terms|, which the whole update bounds; they are not bounded by a leaf's own
value: BatchNorm biases start at zero and move ~3.5e-5 in two steps, and their gradients are
sums that nearly cancel, so an error relative to the leaf itself was 0.05 on an AMD EPYC
machine from rounding alone (and 3e-6 here, on Intel). Measured (Intel Xeon, 4 or 8 devices):
2.6e-5 for both paths, one float32 ulp of a parameter of 1.0; a count that is not summed over
devices (`count * axis_size` in place of `psum(count)` in losses.reduce.global_mean) gives 0.28
(4 devices; 0.17 with 8), and BatchNorm moments not averaged over devices (no `pmean` in
nn.norm.batch_moments) 0.51 (8 devices), both for the pmap path.
"""
import json

import jax
import numpy as np

from jaxseg.config_files import load_config
from jaxseg.data import pipeline, sources
from jaxseg.methods import build_method
from jaxseg.training import parallel


def update_err(tree, ref, start) -> float:
  """max |(tree - start) - (ref - start)| / max |ref - start|, maxima over all leaves (float64)."""
  f64 = lambda t: [np.asarray(x, np.float64) for x in jax.tree.leaves(t)]
  tree, ref, start = f64(tree), f64(ref), f64(start)
  scale = max(np.max(np.abs(r - s)) for r, s in zip(ref, start))
  err = max(np.max(np.abs((x - s) - (r - s))) for x, r, s in zip(tree, ref, start))
  return float(err / scale)


def main():
  n = jax.device_count()
  assert n >= 2, jax.devices()
  c = load_config('configs/deeplabv2.py:smoke')
  c.batch_size = n
  c.dataset.image_size = (33, 33)
  c.dataset.augment.crop_size = (33, 33)
  c.model.msc = False  # MSC adds compile time, not parallel semantics
  src = sources.make_source(c.dataset, 'train')
  single = build_method(c, src.meta)
  batches = pipeline.TrainBatches(src, single.train_transform(), n, seed=0)
  data = [batches[0], batches[1]]
  # On the host: the mesh step donates its input, which must not delete this copy.
  state0 = jax.device_get(jax.jit(single.init_state)(jax.random.PRNGKey(0), data[0]))
  eval_batch = dict(data[0], mask=np.array([True] * (n - 1) + [False]))

  # (a) one device
  step = jax.jit(single.train_step)
  s, losses_a = state0, []
  for b in data:
    s, m = step(s, b)
    losses_a.append(float(m['loss']))
  state_a = jax.device_get(s)
  cm_a = np.asarray(jax.jit(single.eval_step)(state_a, eval_batch)['confusion'])

  # (b) jit over an n-device mesh
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
  s, losses_c = parallel.replicate(state0, n), []
  for b in data:
    s, m = step_c(s, parallel.shard_for_pmap(b, n))
    losses_c.append(float(np.asarray(m['loss'])[0]))
  state_c = parallel.unreplicate(s)
  cm_c = np.asarray(jax.pmap(pm.eval_step, axis_name='batch')(
      parallel.replicate(state_c, n), parallel.shard_for_pmap(eval_batch, n))['confusion'])[0]

  print(json.dumps({
      'losses': [losses_a, losses_b, losses_c],
      'params_jit_vs_single': update_err(state_b.params, state_a.params, state0.params),
      'params_pmap_vs_single': update_err(state_c.params, state_a.params, state0.params),
      'stats_jit_vs_single': update_err(state_b.batch_stats, state_a.batch_stats, state0.batch_stats),
      'stats_pmap_vs_single': update_err(state_c.batch_stats, state_a.batch_stats, state0.batch_stats),
      'cm_equal': bool(np.array_equal(cm_a, cm_b) and np.array_equal(cm_a, cm_c)),
      'cm_total': int(cm_a.sum()),
      'pixels_expected': int(np.sum(eval_batch['label'][:n - 1] != 255)),  # padding example excluded
  }))


if __name__ == '__main__':
  main()
