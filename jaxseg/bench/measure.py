"""Measuring one step: a random well-formed batch, the compiled JAX step of a config (FLOPs, XLA
buffer bytes), the timed-call recorder (wall, CPU use, transient RSS), the float32 matmul peak
(JAX and PyTorch) and the machine description. Used by `jaxseg.bench.benchmark` and
`jaxseg.bench.profile`."""
import importlib.metadata
import os
import statistics
import time
from typing import Callable, List

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import methods
from jaxseg.bench import torch_env
from jaxseg.data import sources
from jaxseg.runner import config_checks

PEAK_N = 2048


def random_batch(config, method, rng: np.random.Generator, height: int, width: int) -> dict:
  """A batch with every key the method reads, random but well-formed."""
  b = config.batch_size
  batch = {'image': rng.normal(0, 50, (b, height, width, 3)).astype(np.float32),
           'label': rng.integers(0, getattr(method, 'num_classes', 2),
                                 (b, height, width)).astype(np.int32),
           'depth': rng.uniform(0.5, 10, (b, height, width)).astype(np.float32),
           'normals': rng.normal(size=(b, height, width, 3)).astype(np.float32),
           'contours': (rng.random((b, height, width)) < 0.1).astype(np.float32),
           'valid': np.ones((b, height, width), bool),
           'mask': np.ones((b,), bool)}
  scale = int(getattr(method, 'scale', 1))  # depth super-resolution (CTKT): LR inputs
  if height % scale == 0 and width % scale == 0:
    batch.update(
        depth_lr=rng.uniform(0, 1, (b, height // scale, width // scale)).astype(np.float32),
        depth_lr_up=rng.uniform(0, 1, (b, height, width)).astype(np.float32),
        minmax=np.tile(np.array([[0.5, 10.0]], np.float32), (b, 1)),
        structure=(rng.random((b, height, width)) < 0.1).astype(np.float32))
  return {k: batch[k] for k in (*method.batch_keys, 'mask') if k in batch}


def _flops(compiled) -> float:
  try:
    cost = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return float('nan')
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


def _status_kb(field: str) -> float:
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(field + ':'):
          return float(line.split()[1])
  except OSError:
    pass
  return float('nan')


def _reset_peak_rss() -> bool:
  """Resets VmHWM to the current RSS (Linux); False where that is not possible."""
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return True
  except OSError:
    return False


def _cpu_s() -> float:
  t = os.times()
  return t.user + t.system


class Timed:
  """Runs `fn` once per call and records wall time, CPU use and transient RSS."""

  def __init__(self, name: str, fn: Callable[[], None]):
    self.name, self.fn = name, fn
    self.times: List[float] = []
    self.cpu: List[float] = []
    self.rss: List[float] = []

  def __call__(self, record: bool = True) -> float:
    can_reset = _reset_peak_rss()
    rss0 = _status_kb('VmRSS')
    c0, t0 = _cpu_s(), time.perf_counter()
    self.fn()
    wall = time.perf_counter() - t0
    if record:
      self.times.append(wall)
      self.cpu.append((_cpu_s() - c0) / max(wall, 1e-9))
      if can_reset:
        self.rss.append((_status_kb('VmHWM') - rss0) / 1024)
    return wall

  def summary(self) -> dict:
    med = lambda v: statistics.median(v) if v else float('nan')
    return {'step_s': med(self.times), 'step_times': [round(t, 4) for t in self.times],
            'cpu_util': med(self.cpu), 'step_rss_mb': max(self.rss) if self.rss else float('nan')}


def _fit_images_to_crop(config):
  """`config` with dataset.image_size raised to the crop size where smaller (the benchmark feeds
  random crops, so only the crop size matters; validation rejects crops larger than images)."""
  ds = config.get('dataset', None)
  if ds is None or 'image_size' not in ds or 'augment' not in ds:
    return config
  crop, size = tuple(ds.augment.crop_size), tuple(ds.image_size)
  if all(s >= c for s, c in zip(size, crop)):
    return config
  config = config.copy_and_resolve_references()
  with config.unlocked():
    config.dataset.image_size = tuple(max(s, c) for s, c in zip(size, crop))
  return config


def method_state_batch(config):
  """(validated config with images fitted to the crop, method, initial state, random batch)."""
  config = _fit_images_to_crop(config)
  config_checks.validate(config)
  meta = sources.make_source(config.dataset, 'train').meta
  method = methods.build_method(config, meta)
  h, w = config.dataset.augment.crop_size
  batch = jax.device_put(random_batch(config, method, np.random.default_rng(0), h, w))
  state = jax.jit(method.init_state)(jax.random.PRNGKey(0), batch)
  return config, method, state, batch


def jax_runner(config, what: str):
  """(timed step closure, info dict) of one compiled JAX variant."""
  config, method, state, batch = method_state_batch(config)
  h, w = config.dataset.augment.crop_size
  if what == 'train':
    fn = jax.jit(method.train_step, donate_argnums=(0,))
  else:
    fn = jax.jit(method.predict_step)
  t0 = time.perf_counter()
  compiled = fn.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  box = {'state': state}

  def step():
    out = compiled(box['state'], batch)
    if what == 'train':
      box['state'], out = out
    jax.block_until_ready(out)

  info = {'what': what, 'batch': config.batch_size, 'size': f'{h}x{w}', 'compile_s': compile_s,
          'gflop_per_step': _flops(compiled) / 1e9, 'xla_peak_mb': _xla_bytes(compiled) / 2**20,
          'num_classes': getattr(method, 'num_classes', 0)}
  return step, info


def matmul_peak_runner(n: int = PEAK_N):
  """A closure returning the best-of-3 GFLOP/s of a float32 (n, n) @ (n, n) `jnp.dot`."""
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  a = jax.random.normal(k1, (n, n), jnp.float32)
  b = jax.random.normal(k2, (n, n), jnp.float32)
  f = jax.jit(jnp.dot)
  f(a, b).block_until_ready()

  def measure() -> float:
    best = float('inf')
    for _ in range(3):
      t0 = time.perf_counter()
      f(a, b).block_until_ready()
      best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9

  return measure


def torch_matmul_peak_runner(n: int = PEAK_N):
  """Like `matmul_peak_runner` with torch.mm (oneDNN/MKL), for reference."""
  torch = torch_env.import_torch()
  a, b = torch.randn(n, n), torch.randn(n, n)
  torch.mm(a, b)

  def measure() -> float:
    best = float('inf')
    for _ in range(3):
      t0 = time.perf_counter()
      torch.mm(a, b)
      best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9

  return measure


def variant_name(config) -> str:
  m = config.get('model', {})
  return f"jax conv_impl={m.get('conv_impl', 'xla')} {m.get('dtype', 'float32')}"


def machine() -> dict:
  """CPU model, cores, versions, load average."""
  cpu = 'unknown'
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), cpu)
  except OSError:
    pass
  try:
    load = os.getloadavg()
  except OSError:
    load = (float('nan'),) * 3
  info = {'cpu': cpu, 'cores': os.cpu_count(), 'jax': jax.__version__,
          'device': str(jax.devices()[0].device_kind), 'loadavg': [round(v, 2) for v in load]}
  try:
    info['torch'] = importlib.metadata.version('torch')  # without importing it
  except importlib.metadata.PackageNotFoundError:
    info['torch'] = None
  return info
