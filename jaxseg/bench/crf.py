"""Benchmark: the JAX dense CRF (`jaxseg.inference.crf.dense_crf`) against pydensecrf2.

  python -m jaxseg.bench.crf [--height 512 --width 1024 --classes 19 --repeats 5]
                             [--json=path] [--profile]

Same machine, same process, same inputs: DeepLab v2 CRF parameters (`CRF_DEFAULTS`, 10
iterations), the real 1024x512 Cityscapes street image when ../shared/realdata is present
(else a synthetic image of smooth colour blobs), probabilities from smooth random logits.
JAX: compile time on its own (`lower().compile()`), then the median of --repeats calls, each
synchronised with `block_until_ready`. pydensecrf2 (when installed): the median of --repeats
full runs (`DenseCRF2D`, unary, both kernels, `inference`). The rows run interleaved, round by
round, so load changes on a shared machine hit both alike. Also reports how far the two results
are apart, the CPU model and the load (`os.getloadavg`). --profile prints XLA's per-op times of
one JAX call (jax.profiler).
"""
import argparse
import collections
import functools
import glob
import json
import os
import pathlib
import platform
import shutil
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxseg.inference.crf import CRF_DEFAULTS, dense_crf

REALDATA = pathlib.Path(__file__).resolve().parents[3] / 'shared' / 'realdata'
STREET = REALDATA / 'cityscapes' / 'demo_street.png'


def cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def inputs(height: int, width: int, classes: int, seed: int = 0):
  """(image (H, W, 3) uint8, probs (H, W, C) float32, image source)."""
  rng = np.random.default_rng(seed)
  if STREET.is_file():
    image = np.array(Image.open(STREET).convert('RGB').resize((width, height), Image.BILINEAR))
    source = f'{STREET.name} resized to {height}x{width}'
  else:
    coarse = rng.uniform(0, 255, (height // 32 + 2, width // 32 + 2, 3))
    image = jax.image.resize(jnp.asarray(coarse), (height, width, 3), 'cubic')
    image = np.clip(np.asarray(image) + rng.normal(0, 4, (height, width, 3)), 0, 255)
    image, source = image.astype(np.uint8), 'synthetic colour blobs'
  coarse = rng.normal(0, 3, (height // 16 + 2, width // 16 + 2, classes))
  logits = np.asarray(jax.image.resize(jnp.asarray(coarse), (height, width, classes), 'linear'))
  logits = logits + rng.normal(0, 1, logits.shape)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  return image, (probs / probs.sum(-1, keepdims=True)).astype(np.float32), source


def pydensecrf_runner(image: np.ndarray, probs: np.ndarray, params: dict):
  """A function running pydensecrf2 end to end on these inputs, or None if not installed."""
  try:
    import pydensecrf.densecrf as densecrf  # pylint: disable=g-import-not-at-top
    from pydensecrf.utils import unary_from_softmax  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  height, width, classes = probs.shape
  probs_chw = np.ascontiguousarray(probs.transpose(2, 0, 1))
  image = np.ascontiguousarray(image)

  def run():
    crf = densecrf.DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs_chw)))
    crf.addPairwiseGaussian(sxy=params['gaussian_sxy'], compat=params['gaussian_weight'])
    crf.addPairwiseBilateral(sxy=params['bilateral_sxy'], srgb=params['bilateral_srgb'],
                             rgbim=image, compat=params['bilateral_weight'])
    q = np.array(crf.inference(params['iterations']))
    return q.reshape(classes, height, width).transpose(1, 2, 0)
  return run


def profile(compiled, args, top: int = 25, logdir: str = '/tmp/jaxseg_crf_profile') -> str:
  """XLA per-op times (ms, summed over threads and loop trips) of one call, largest first."""
  shutil.rmtree(logdir, ignore_errors=True)
  jax.profiler.start_trace(logdir)
  jax.block_until_ready(compiled(*args))
  jax.profiler.stop_trace()
  path = sorted(glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True))[-1]
  totals, counts = collections.Counter(), collections.Counter()
  for plane in jax.profiler.ProfileData.from_file(path).planes:
    for line in plane.lines:
      for event in line.events:
        op = dict(event.stats).get('hlo_op')
        if op and not event.name.startswith('end:'):
          totals[op] += event.duration_ns / 1e6
          counts[op] += 1
  lines = [f'sum of op times {sum(totals.values()):.0f} ms', '| op | ms | calls |', '|---|---|---|']
  lines += [f'| {op} | {ms:.1f} | {counts[op]} |' for op, ms in totals.most_common(top)]
  return '\n'.join(lines)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--height', type=int, default=512)
  parser.add_argument('--width', type=int, default=1024)
  parser.add_argument('--classes', type=int, default=19)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--json', default='', help='also write the numbers to this file')
  parser.add_argument('--profile', action='store_true', help="print XLA's per-op profile")
  args = parser.parse_args()
  params = dict(CRF_DEFAULTS)
  image, probs, source = inputs(args.height, args.width, args.classes)
  jax_args = (jnp.asarray(image), jnp.asarray(probs))
  start = time.perf_counter()
  compiled = jax.jit(functools.partial(dense_crf, **params)).lower(*jax_args).compile()
  compile_s = time.perf_counter() - start
  reference = pydensecrf_runner(image, probs, params)
  times = {'jax': [], 'pydensecrf2': []}
  results = {'jax': jax.block_until_ready(compiled(*jax_args))}  # warm-up (allocations)
  for _ in range(args.repeats):
    start = time.perf_counter()
    results['jax'] = jax.block_until_ready(compiled(*jax_args))
    times['jax'].append(time.perf_counter() - start)
    if reference is not None:
      start = time.perf_counter()
      results['pydensecrf2'] = reference()
      times['pydensecrf2'].append(time.perf_counter() - start)
  report = {
      'shape': [args.height, args.width, args.classes], 'iterations': params['iterations'],
      'params': params, 'image': source, 'cpu': cpu_model(), 'cores': os.cpu_count(),
      'device': str(jax.devices()[0]), 'jax': jax.__version__, 'repeats': args.repeats,
      'jax_compile_s': compile_s,
      'jax_median_s': statistics.median(times['jax']), 'jax_s': times['jax'],
  }
  if reference is not None:
    q, ref = np.asarray(results['jax']), results['pydensecrf2']
    report.update(pydensecrf2_median_s=statistics.median(times['pydensecrf2']),
                  pydensecrf2_s=times['pydensecrf2'],
                  mean_abs_diff=float(np.abs(q - ref).mean()),
                  argmax_agreement=float((q.argmax(-1) == ref.argmax(-1)).mean()))
  report['load_1_5_15'] = list(os.getloadavg())
  print(f"dense CRF {args.height}x{args.width}, {args.classes} classes, "
        f"{params['iterations']} iterations, {source}")
  print(f"{report['cpu']} ({report['cores']} cores), {report['device']}, jax {jax.__version__}, "
        f"load {' '.join(f'{x:.2f}' for x in report['load_1_5_15'])}")
  print('| implementation | compile s | median s | runs s |\n|---|---|---|---|')
  print(f"| jax (jaxseg) | {compile_s:.1f} | {report['jax_median_s']:.3f} | "
        f"{' '.join(f'{t:.2f}' for t in times['jax'])} |")
  if reference is None:
    print('| pydensecrf2 | - | not installed (pip install pydensecrf2) | |')
  else:
    print(f"| pydensecrf2 | - | {report['pydensecrf2_median_s']:.3f} | "
          f"{' '.join(f'{t:.2f}' for t in times['pydensecrf2'])} |")
    print(f"jax / pydensecrf2 time: {report['jax_median_s'] / report['pydensecrf2_median_s']:.2f}; "
          f"mean |dp| {report['mean_abs_diff']:.4f}, argmax agreement "
          f"{100 * report['argmax_agreement']:.2f}%")
  if args.profile:
    print(profile(compiled, jax_args))
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(report, f, indent=1)


if __name__ == '__main__':
  main()
