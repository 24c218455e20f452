"""Timing of any config's train step (or inference): compile time, s/step, images/s,
GFLOP/s from XLA's cost analysis, and peak memory.

  python -m jaxseg.benchmark --config=configs/deeplabv2.py --config.batch_size=2 \
      --config.dataset.augment.crop_size=321,321 --config.model.msc=False

Data are random arrays of the training crop size, so only the device step is timed.
Steady-state time is the median over `--steps` steps, each synchronised with
block_until_ready. Peak memory: XLA's buffer assignment (arguments + temporaries) and the
process's max RSS.
"""
import resource
import statistics
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from jaxseg import config_checks, methods
from jaxseg.data import sources

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path[:arg]).',
                                          lock_config=True)
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps after compilation.')
_WHAT = flags.DEFINE_enum('what', 'train', ['train', 'predict'], 'Train step or inference.')
flags.mark_flags_as_required(['config'])


def random_batch(config, method, rng: np.random.Generator, height: int, width: int) -> dict:
  """A batch with every key the method reads, random but well-formed."""
  b = config.batch_size
  batch = {'image': rng.normal(0, 50, (b, height, width, 3)).astype(np.float32),
           'label': rng.integers(0, method.num_classes, (b, height, width)).astype(np.int32),
           'depth': rng.uniform(0.5, 10, (b, height, width)).astype(np.float32),
           'normals': rng.normal(size=(b, height, width, 3)).astype(np.float32),
           'contours': (rng.random((b, height, width)) < 0.1).astype(np.float32),
           'valid': np.ones((b, height, width), bool),
           'mask': np.ones((b,), bool)}
  return {k: batch[k] for k in (*method.batch_keys, 'mask') if k in batch}


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  return float((cost or {}).get('flops', float('nan')))


def _xla_bytes(compiled) -> float:
  try:
    m = compiled.memory_analysis()
    return float(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                 - m.alias_size_in_bytes)
  except Exception:  # pylint: disable=broad-except
    return float('nan')


def benchmark(config, what: str = 'train', steps: int = 10, warmup: int = 2) -> dict:
  """Returns a dict of the measured numbers (see module docstring)."""
  config_checks.validate(config)
  meta = sources.make_source(config.dataset, 'train').meta
  method = methods.build_method(config, meta)
  h, w = config.dataset.augment.crop_size
  batch = jax.device_put(random_batch(config, method, np.random.default_rng(0), h, w))
  state = jax.jit(method.init_state)(jax.random.PRNGKey(0), batch)
  if what == 'train':
    fn = jax.jit(method.train_step, donate_argnums=(0,))
  else:
    fn = jax.jit(method.predict_step)
  t0 = time.perf_counter()
  compiled = fn.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0

  def run(state):
    out = compiled(state, batch)
    if what == 'train':
      state, out = out
    jax.block_until_ready(out)
    return state

  for _ in range(warmup):
    state = run(state)
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state = run(state)
    times.append(time.perf_counter() - t)
  step_s = statistics.median(times)
  flops = _flops(compiled)
  return {'what': what, 'batch': config.batch_size, 'size': f'{h}x{w}',
          'compile_s': compile_s, 'step_s': step_s, 'images_per_s': config.batch_size / step_s,
          'gflop_per_step': flops / 1e9, 'gflops_per_s': flops / 1e9 / step_s,
          'xla_peak_mb': _xla_bytes(compiled) / 2**20,
          'max_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          'device': str(jax.devices()[0].device_kind)}


def format_result(r: dict) -> str:
  return '\n'.join(f'{k:>15}: {v:.4g}' if isinstance(v, float) else f'{k:>15}: {v}'
                   for k, v in r.items())


def main(argv):
  del argv
  print(format_result(benchmark(_CONFIG.value, _WHAT.value, _STEPS.value, _WARMUP.value)),
        flush=True)


if __name__ == '__main__':
  app.run(main)
