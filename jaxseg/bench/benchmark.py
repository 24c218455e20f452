"""Timing of any config's train step (or inference), side by side with its variants and PyTorch.

One variant (the config as given):

  python -m jaxseg.bench --config=configs/deeplabv2.py --config.batch_size=2 \
      --config.dataset.augment.crop_size=321,321 --config.model.msc=False

A table of variants (every combination of --conv_impls x --dtypes), the PyTorch reference of the
same architecture (`jaxseg.bench.torch_deeplabv2`, when PyTorch is installed and the model has one) and the
machine's float32 matmul peak, all measured in ONE process with their steps interleaved round by
round, so that load changes on a shared machine hit every row alike:

  python -m jaxseg.bench --config=configs/deeplabv2.py --config.model.depth=101 \
      --config.batch_size=2 --config.dataset.augment.crop_size=321,321 --config.model.msc=False \
      --conv_impls=xla,matmul --compare_torch --steps=3 --warmup=1

Data are random arrays of the training crop size, so only the device step is timed. Each step is
synchronised (`block_until_ready`; PyTorch reads the loss back). Columns:
  s/step        median over --steps timed steps (after compilation and --warmup steps).
  vs torch      PyTorch s/step / this row's s/step (> 1: faster than PyTorch).
  GFLOP/s       model FLOPs per step / s/step, the FLOPs being XLA's cost analysis of the first
                row's compiled step (the same count for every row, PyTorch included).
  % peak        GFLOP/s / the float32 matmul peak (a 2048^3 `jnp.dot`, best of 3 per round,
                median over rounds, measured in the same rounds).
  compile s     `jit(...).lower(...).compile()` wall time (PyTorch: its first, untimed step).
  XLA MB        XLA buffer assignment: arguments + outputs + temporaries - aliased (donated).
  step RSS MB   the largest rise of the process's resident memory (VmHWM, reset before each
                step) over its RSS at the step's start: the step's transient working memory.
  CPU           process CPU time / wall time during the row's steps (2.0 = both cores busy).
`--env_ab='VAR=v VAR2=w'` instead times the first variant in alternating subprocesses with and
without those environment variables (e.g. the glibc allocator settings of docs/performance.md).
"""
import importlib.metadata
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from jaxseg import methods
from jaxseg.runner import config_checks
from jaxseg.data import sources

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path[:arg]).',
                                          lock_config=True)
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps (rounds).')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed steps after compilation.')
_WHAT = flags.DEFINE_enum('what', 'train', ['train', 'predict'], 'Train step or inference.')
_CONV_IMPLS = flags.DEFINE_list('conv_impls', [], 'Variants of config.model.conv_impl '
                                '(default: the config\'s).')
_DTYPES = flags.DEFINE_list('dtypes', [], 'Variants of config.model.dtype (default: the '
                            'config\'s).')
_COMPARE_TORCH = flags.DEFINE_bool('compare_torch', True, 'Time the PyTorch reference too, when '
                                   'PyTorch is installed and the model has one (else n/a).')
_TORCH_CHANNELS_LAST = flags.DEFINE_bool('torch_channels_last', False,
                                         'Run the PyTorch reference in channels_last format.')
_PEAK = flags.DEFINE_bool('matmul_peak', True, 'Measure the float32 matmul peak in the rounds.')
_JSON = flags.DEFINE_string('json', '', 'Also write the results to this JSON file.')
_ENV_AB = flags.DEFINE_string('env_ab', '', 'Environment assignments to A/B in subprocesses.')
_ROUNDS = flags.DEFINE_integer('ab_rounds', 2, 'Subprocess pairs for --env_ab.')
_PROFILE = flags.DEFINE_bool('profile', False, 'Print XLA\'s per-op profile of the first '
                              'variant (jax.profiler trace of --steps steps).')
_PATCHES = flags.DEFINE_multi_string(
    'patch', [], "Extra variant(s) of the last --conv_impls/--dtypes variant, compiled with module "
    "attributes set, e.g. --patch='jaxseg.nn.conv_vjp.NARROW_MIN_RATIO=1e9' (';' separates "
    "several).")
_SINGLE = flags.DEFINE_bool('single', False, 'Print only the one-variant dict (for --env_ab).')
flags.mark_flags_as_required(['config'])

PEAK_N = 2048


# -- helpers ---------------------------------------------------------------------------------
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


class _Timed:
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


def _method_state_batch(config):
  """(validated config with images fitted to the crop, method, initial state, random batch)."""
  config = _fit_images_to_crop(config)
  config_checks.validate(config)
  meta = sources.make_source(config.dataset, 'train').meta
  method = methods.build_method(config, meta)
  h, w = config.dataset.augment.crop_size
  batch = jax.device_put(random_batch(config, method, np.random.default_rng(0), h, w))
  state = jax.jit(method.init_state)(jax.random.PRNGKey(0), batch)
  return config, method, state, batch


def _jax_runner(config, what: str):
  """(timed step closure, info dict) of one compiled JAX variant."""
  config, method, state, batch = _method_state_batch(config)
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
          'num_classes': method.num_classes}
  return step, info


def _matmul_peak_runner(n: int = PEAK_N):
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


def _torch_matmul_peak_runner(n: int = PEAK_N):
  """Like `_matmul_peak_runner` with torch.mm (oneDNN/MKL), for reference."""
  from jaxseg.bench import torch_deeplabv2 as bench_torch  # pylint: disable=g-import-not-at-top
  torch = bench_torch.import_torch()
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


def _variant_name(config) -> str:
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


# -- public API ------------------------------------------------------------------------------
def benchmark(config, what: str = 'train', steps: int = 10, warmup: int = 2) -> dict:
  """Times one variant (the config as given). Returns a dict of the measured numbers:

  what, batch, size, compile_s, step_s, step_times, images_per_s, gflop_per_step, gflops_per_s,
  xla_peak_mb, max_rss_mb, step_rss_mb, cpu_util, device.
  """
  step, info = _jax_runner(config, what)
  timed = _Timed(_variant_name(config), step)
  for _ in range(warmup):
    timed(record=False)
  for _ in range(steps):
    timed()
  s = timed.summary()
  info.pop('num_classes')
  return {**info, **s, 'images_per_s': config.batch_size / s['step_s'],
          'gflops_per_s': info['gflop_per_step'] / s['step_s'],
          'max_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          'device': str(jax.devices()[0].device_kind)}


def variants(config, conv_impls: Sequence[str] = (), dtypes: Sequence[str] = ()) -> list:
  """Copies of `config`, one per (conv_impl, dtype); empty lists keep the config's value."""
  out = []
  model = config.get('model', None)
  impls = list(conv_impls) or [model.get('conv_impl', 'xla') if model else 'xla']
  dts = list(dtypes) or [model.get('dtype', 'float32') if model else 'float32']
  for impl in impls:
    for dt in dts:
      c = config.copy_and_resolve_references()
      with c.unlocked():
        c.model.conv_impl = impl
        c.model.dtype = dt
      out.append(c)
  return out


def parse_patch(spec: str) -> Dict[str, Any]:
  """'pkg.mod.ATTR=1e9;pkg.mod.OTHER=3' -> {'pkg.mod.ATTR': 1e9, 'pkg.mod.OTHER': 3}."""
  out = {}
  for item in filter(None, (p.strip() for p in spec.split(';'))):
    key, value = item.split('=', 1)
    try:
      out[key.strip()] = json.loads(value)
    except json.JSONDecodeError:
      out[key.strip()] = value
  return out


class patched:  # pylint: disable=invalid-name
  """Context manager setting module attributes {'pkg.mod.ATTR': value} (restored on exit)."""

  def __init__(self, patches: Optional[Dict[str, Any]]):
    self.patches, self.saved = dict(patches or {}), []

  def __enter__(self):
    for key, value in self.patches.items():
      mod, attr = key.rsplit('.', 1)
      module = importlib.import_module(mod)
      self.saved.append((module, attr, getattr(module, attr)))
      setattr(module, attr, value)
    return self

  def __exit__(self, *exc):
    for module, attr, value in reversed(self.saved):
      setattr(module, attr, value)
    self.saved = []


def compare(configs: Sequence[Any], what: str = 'train', steps: int = 3, warmup: int = 1,
            compare_torch: bool = True, matmul_peak: bool = True,
            torch_channels_last: bool = False, log: Optional[Callable[[str], None]] = None,
            patches: Sequence[Optional[Dict[str, Any]]] = ()) -> dict:
  """Times every config in `configs` (JAX), the PyTorch reference of the first one (when
  `compare_torch` and it has one) and the matmul peak, interleaved round by round in this process.
  `patches[i]` (optional) are module attributes set while config i is traced and compiled (see
  `patched`), e.g. to time a tuning constant of `jaxseg.nn.conv_vjp` against its default.

  Returns {'machine', 'what', 'peak_gflops', 'peak_samples', 'torch_note', 'rows'}; each row has
  name, step_s, step_times, vs_torch, gflop_per_step, gflops_per_s, peak_share, compile_s,
  xla_peak_mb, step_rss_mb, cpu_util, images_per_s.
  """
  log = log or (lambda s: None)
  load0 = machine()['loadavg']
  rows, timers = [], []
  patches = list(patches) + [None] * (len(configs) - len(patches))
  for c, patch in zip(configs, patches):
    name = _variant_name(c) + (' ' + ';'.join(f'{k.rsplit(".", 1)[-1]}={v}'
                                              for k, v in patch.items()) if patch else '')
    log(f'compiling {name}')
    with patched(patch):
      step, info = _jax_runner(c, what)
    rows.append({'name': name, **info})
    timers.append(_Timed(name, step))
  torch_note = None
  if compare_torch:
    from jaxseg.bench import torch_deeplabv2 as bench_torch  # pylint: disable=g-import-not-at-top
    torch_note = bench_torch.supports(configs[0])
    if torch_note is None:
      log('building the PyTorch reference')
      tb = bench_torch.from_config(configs[0], what, channels_last=torch_channels_last,
                                   num_classes=rows[0]['num_classes'])
      t0 = time.perf_counter()
      tb.step()  # first step: allocations, oneDNN primitive creation
      first = time.perf_counter() - t0
      name = f'torch {tb.torch.__version__} ({tb.torch.get_num_threads()} threads' + (
          ', channels_last)' if torch_channels_last else ')')
      rows.append({'name': name, 'what': what, 'batch': rows[0]['batch'],
                   'size': rows[0]['size'], 'compile_s': first, 'gflop_per_step': float('nan'),
                   'xla_peak_mb': float('nan')})
      timers.append(_Timed(name, tb.step))
  else:
    torch_note = 'not requested'
  peak_fn = _matmul_peak_runner() if matmul_peak else None
  torch_peak_fn = None
  if matmul_peak and any(r['name'].startswith('torch') for r in rows):
    torch_peak_fn = _torch_matmul_peak_runner()
  peaks, torch_peaks = [], []
  for r in range(warmup + steps):
    record = r >= warmup
    if peak_fn is not None and record:
      peaks.append(peak_fn())
    if torch_peak_fn is not None and record:
      torch_peaks.append(torch_peak_fn())
    for t in timers:
      wall = t(record=record)
      log(f'round {r}{"" if record else " (warm-up)"}: {t.name}: {wall:.3f} s')
  peak = statistics.median(peaks) if peaks else float('nan')
  model_gflop = rows[0]['gflop_per_step']
  torch_s = None
  for row, t in zip(rows, timers):
    row.update(t.summary())
    if row['name'].startswith('torch'):
      torch_s = row['step_s']
  for row in rows:
    row.pop('num_classes', None)
    row['images_per_s'] = row['batch'] / row['step_s']
    row['model_gflop_per_step'] = model_gflop
    row['gflops_per_s'] = model_gflop / row['step_s']
    row['peak_share'] = row['gflops_per_s'] / peak
    row['vs_torch'] = torch_s / row['step_s'] if torch_s else float('nan')
  info = machine()
  info['loadavg_before'] = load0
  return {'machine': info, 'what': what, 'peak_gflops': peak,
          'peak_samples': [round(p, 1) for p in peaks], 'torch_note': torch_note, 'rows': rows,
          'torch_peak_gflops': statistics.median(torch_peaks) if torch_peaks else float('nan'),
          'max_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _fmt(v, spec: str) -> str:
  if v is None or (isinstance(v, float) and not np.isfinite(v)):
    return 'n/a'
  return format(v, spec)


def format_table(result: dict, title: str = '') -> str:
  """Markdown table of `compare`'s result."""
  m = result['machine']
  lines = []
  if title:
    lines.append(f'### {title}')
  lines.append(f"{result['what']}, batch {result['rows'][0]['batch']}, "
               f"{result['rows'][0]['size']}; {m['cpu']}, {m['cores']} cores, load average "
               f"{m.get('loadavg_before')} -> {m['loadavg']}; jax {m['jax']}, torch {m['torch']}; "
               f"float32 matmul peak (jnp.dot {PEAK_N}^3) {_fmt(result['peak_gflops'], '.0f')} "
               f"GFLOP/s (samples {result['peak_samples']}); torch.mm "
               f"{_fmt(result.get('torch_peak_gflops'), '.0f')} GFLOP/s")
  if result.get('torch_note'):
    lines.append(f"PyTorch reference: n/a ({result['torch_note']})")
  lines.append('')
  lines.append('| variant | s/step | vs torch | GFLOP/s | % peak | compile s | XLA MB | '
               'step RSS MB | CPU | steps (s) |')
  lines.append('|---|---|---|---|---|---|---|---|---|---|')
  for r in result['rows']:
    lines.append(
        f"| {r['name']} | {_fmt(r['step_s'], '.3f')} | {_fmt(r['vs_torch'], '.2f')}x | "
        f"{_fmt(r['gflops_per_s'], '.0f')} | {_fmt(100 * r['peak_share'], '.0f')}% | "
        f"{_fmt(r['compile_s'], '.1f')} | {_fmt(r['xla_peak_mb'], '.0f')} | "
        f"{_fmt(r['step_rss_mb'], '.0f')} | {_fmt(r['cpu_util'], '.2f')} | "
        f"{', '.join(f'{t:.2f}' for t in r['step_times'])} |")
  lines.append(f"Model FLOPs per step (XLA cost analysis of the first row): "
               f"{_fmt(result['rows'][0]['model_gflop_per_step'], '.1f')} GFLOP; "
               f"process max RSS {result['max_rss_mb']:.0f} MB.")
  return '\n'.join(lines)


def format_result(r: dict) -> str:
  return '\n'.join(f'{k:>15}: {v:.4g}' if isinstance(v, float) else f'{k:>15}: {v}'
                   for k, v in r.items())


def env_ab(argv_flags: Sequence[str], assignments: str, rounds: int) -> dict:
  """Runs `python -m jaxseg.bench --single ...` alternately with and without `assignments`
  (e.g. 'MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0'), `rounds` times each; returns per-arm results."""
  extra = dict(a.split('=', 1) for a in assignments.split())
  arms = {'with': [], 'without': []}
  base_env = {k: v for k, v in os.environ.items() if k not in extra}
  for _ in range(rounds):
    for arm in ('with', 'without'):
      env = dict(base_env, **extra) if arm == 'with' else dict(base_env)
      out = subprocess.run([sys.executable, '-m', 'jaxseg.bench', '--single', *argv_flags],
                           env=env, capture_output=True, text=True, check=True)
      res = json.loads(out.stdout.strip().splitlines()[-1])
      print(f"{arm:>8}: step {res['step_s']:.3f} s {res['step_times']} compile "
            f"{res['compile_s']:.1f} s max RSS {res['max_rss_mb']:.0f} MB step RSS "
            f"{res['step_rss_mb']:.0f} MB CPU {res['cpu_util']:.2f}", flush=True)
      arms[arm].append(res)
  summary = {}
  for arm, rs in arms.items():
    summary[arm] = {'step_s': statistics.median(t for r in rs for t in r['step_times']),
                    'compile_s': statistics.median(r['compile_s'] for r in rs),
                    'max_rss_mb': max(r['max_rss_mb'] for r in rs),
                    'step_rss_mb': max(r['step_rss_mb'] for r in rs)}
  return {'assignments': assignments, 'arms': arms, 'summary': summary}


# -- per-op profile ----------------------------------------------------------------------------
_INSTR = re.compile(r'^\s*(?:ROOT )?%([\w.-]+) = (\([^=]*?\)|\S+) ([\w-]+)\((.*)$')
_COMP = re.compile(r'^(?:ENTRY )?%([\w.-]+) .*\{\s*$')


def parse_hlo(text: str) -> Dict[str, dict]:
  """Instruction name -> {opcode, shape, op_name, calls, dim_labels, ynn, comp, body_ops}, from
  `compiled.as_text()`; `body_ops` lists the opcodes inside a fusion's computation."""
  instrs, comps, comp = {}, {}, None
  for line in text.splitlines():
    m = _COMP.match(line)
    if m and ' = ' not in line.split('{')[0]:
      comp = m.group(1)
      comps[comp] = []
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    name, shape, opcode, rest = m.groups()
    get = lambda key: (re.search(key + r'=([^,\s}]+)', rest) or [None, None])[1]
    op_name = re.search(r'op_name="([^"]*)"', rest)
    instrs[name] = {'opcode': opcode, 'shape': shape, 'comp': comp,
                    'op_name': op_name.group(1) if op_name else '',
                    'calls': (get('calls') or '').lstrip('%'), 'dim_labels': get('dim_labels'),
                    'ynn': '__ynn_fusion' in rest}
    if comp is not None:
      comps[comp].append((opcode, instrs[name]['dim_labels']))
  for ins in instrs.values():
    body = comps.get(ins['calls'], [])
    ins['body_ops'] = [op for op, _ in body]
    ins['dim_labels'] = ins['dim_labels'] or next((d for op, d in body if d), None)
  return instrs


def op_category(ins: dict) -> str:
  """Coarse class of an HLO instruction for the profile summary."""
  ops = [ins['opcode']] + list(ins.get('body_ops', []))
  back = 'transpose(' in ins.get('op_name', '')
  if 'convolution' in ops:
    labels = ins.get('dim_labels') or ''
    if labels.split('->')[-1].startswith('01'):
      return 'conv weight-grad'
    return 'conv input-grad' if back else 'conv forward'
  if 'dot' in ops:
    return 'dot (backward)' if back else 'dot (forward)'
  if 'reduce' in ops or 'reduce-window' in ops or 'select-and-scatter' in ops:
    return 'reduction fusion' if ins['opcode'] == 'fusion' else 'reduction'
  if ins['opcode'] in ('transpose', 'copy') or set(ops) <= {'transpose', 'copy', 'parameter',
                                                            'bitcast', 'fusion'}:
    return 'transpose/copy'
  if {'concatenate', 'pad', 'slice', 'dynamic-slice', 'dynamic-update-slice'} & set(ops):
    return 'pad/slice/concat'
  if ins['opcode'] == 'fusion':
    return 'elementwise fusion'
  return ins['opcode']


def profile_ops(config, what: str = 'train', steps: int = 1, warmup: int = 1,
                logdir: str = '/tmp/jaxseg_profile') -> dict:
  """XLA's per-op (thunk) profile of one variant's step via `jax.profiler`: returns
  {'step_s', 'ops': [{name, category, ms, opcode, shape, op_name}], 'categories': {cat: ms}}
  with per-step milliseconds summed over every thread. The optimised HLO is written next to
  `logdir` as `<logdir>.hlo.txt`."""
  import glob  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  _, method, state, batch = _method_state_batch(config)
  fn = jax.jit(method.train_step if what == 'train' else method.predict_step)
  compiled = fn.lower(state, batch).compile()
  hlo = compiled.as_text()
  with open(os.path.join(os.path.dirname(logdir.rstrip('/')) or '.',
                         os.path.basename(logdir.rstrip('/')) + '.hlo.txt'), 'w') as f:
    f.write(hlo)  # <logdir>.hlo.txt: the optimised HLO the op names refer to
  instrs = parse_hlo(hlo)
  run = lambda: jax.block_until_ready(compiled(state, batch))
  for _ in range(warmup):
    run()
  shutil.rmtree(logdir, ignore_errors=True)
  jax.profiler.start_trace(logdir)
  t0 = time.perf_counter()
  for _ in range(steps):
    run()
  step_s = (time.perf_counter() - t0) / steps
  jax.profiler.stop_trace()
  path = sorted(glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True))[-1]
  data = jax.profiler.ProfileData.from_file(path)
  totals: Dict[str, float] = {}
  for plane in data.planes:
    for line in plane.lines:
      for ev in line.events:
        stats = dict(ev.stats)
        op = stats.get('hlo_op')
        if op and not ev.name.startswith('end:'):
          totals[op] = totals.get(op, 0.0) + ev.duration_ns / 1e6 / steps
  ops, cats = [], {}
  for name, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
    ins = instrs.get(name, {'opcode': '?', 'shape': '?', 'op_name': '', 'body_ops': []})
    cat = op_category(ins)
    cats[cat] = cats.get(cat, 0.0) + ms
    ops.append({'name': name, 'category': cat, 'ms': ms, 'opcode': ins['opcode'],
                'shape': ins['shape'], 'op_name': ins['op_name'][-90:],
                'ynn': ins.get('ynn', False)})
  return {'step_s': step_s, 'ops': ops,
          'categories': dict(sorted(cats.items(), key=lambda kv: -kv[1])),
          'op_ms_total': sum(totals.values())}


def format_profile(prof: dict, top: int = 30) -> str:
  lines = [f"step {prof['step_s']:.3f} s; sum of op times {prof['op_ms_total']:.0f} ms",
           '', '| category | ms/step | share |', '|---|---|---|']
  total = prof['op_ms_total'] or float('nan')
  for cat, ms in prof['categories'].items():
    lines.append(f'| {cat} | {ms:.0f} | {100 * ms / total:.1f}% |')
  lines += ['', f'top {top} ops:', '| op | category | ms | shape | op_name |',
            '|---|---|---|---|---|']
  for o in prof['ops'][:top]:
    lines.append(f"| {o['name']}{' (ynn)' if o['ynn'] else ''} | {o['category']} | "
                 f"{o['ms']:.1f} | {o['shape'][:40]} | {o['op_name']} |")
  return '\n'.join(lines)


def main(argv):
  del argv
  config = _CONFIG.value
  if _SINGLE.value:
    cfg = variants(config, _CONV_IMPLS.value[:1], _DTYPES.value[:1])[0]
    print(json.dumps(benchmark(cfg, _WHAT.value, _STEPS.value, _WARMUP.value)), flush=True)
    return
  if _PROFILE.value:
    cfg = variants(config, _CONV_IMPLS.value[:1], _DTYPES.value[:1])[0]
    prof = profile_ops(cfg, _WHAT.value, _STEPS.value, _WARMUP.value)
    print(format_profile(prof), flush=True)
    if _JSON.value:
      with open(_JSON.value, 'w') as f:
        json.dump(prof, f, indent=1)
    return
  if _ENV_AB.value:
    passthrough = [a for a in sys.argv[1:] if not a.startswith(('--env_ab', '--ab_rounds',
                                                                '--json'))]
    res = env_ab(passthrough, _ENV_AB.value, _ROUNDS.value)
    for arm, s in res['summary'].items():
      print(f"{arm:>8} {res['assignments']!r}: median {s['step_s']:.3f} s/step, compile "
            f"{s['compile_s']:.1f} s, max RSS {s['max_rss_mb']:.0f} MB, step RSS "
            f"{s['step_rss_mb']:.0f} MB")
    w, wo = res['summary']['with']['step_s'], res['summary']['without']['step_s']
    print(f'speed-up with the settings: {wo / w:.2f}x; load average {machine()["loadavg"]}')
    if _JSON.value:
      with open(_JSON.value, 'w') as f:
        json.dump(res, f, indent=1)
    return
  configs = variants(config, _CONV_IMPLS.value, _DTYPES.value)
  patches = [None] * len(configs)
  base = configs[-1]
  for spec in _PATCHES.value:
    configs.append(base)
    patches.append(parse_patch(spec))
  res = compare(configs, _WHAT.value, _STEPS.value, _WARMUP.value, patches=patches,
                compare_torch=_COMPARE_TORCH.value, matmul_peak=_PEAK.value,
                torch_channels_last=_TORCH_CHANNELS_LAST.value,
                log=lambda s: print(s, file=sys.stderr, flush=True))
  model = config.get('model', {})
  title = (f"{config.get('method')} / {model.get('name')} depth {model.get('depth')}"
           f"{' MSC' if model.get('msc', False) else ''}")
  print(format_table(res, title), flush=True)
  if _JSON.value:
    with open(_JSON.value, 'w') as f:
      json.dump(res, f, indent=1, default=str)


if __name__ == '__main__':
  app.run(main)
