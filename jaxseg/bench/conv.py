"""Micro-benchmark: XLA convolutions vs `conv2d_matmul_wgrad` on dilated-ResNet shapes.

  python -m jaxseg.bench.conv [--reps 7] [--batch 2] [--only stem]

Times (median ms over --reps runs after compile and warm-up, `block_until_ready`) the forward,
the input gradient and the weight gradient of each convolution, each compiled on its own with
`jax.jit` (the unused half of the VJP is removed by XLA); runs of all variants are interleaved.
Rows: 'xla' (`lax.conv_general_dilated` and its autodiff), 'matmul auto' (`conv2d_matmul_wgrad`,
wgrad='auto'; the strategy it picks in brackets) and, for KxK kernels, both explicit strategies.
'total' = fwd + dx + dw.
Inputs are float32 NHWC / HWIO. On a shared machine expect 10-15% noise between runs.
"""

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.nn.conv_vjp import auto_strategy, conv2d_matmul_wgrad

# name, (H, W), kernel, Cin, Cout, stride, dilation (padding is dilation * (k - 1) // 2).
SHAPES = (
    ('layer4 1x1 2048->512', (33, 33), 1, 2048, 512, 1, 1),
    ('layer4 1x1 1024->2048', (33, 33), 1, 1024, 2048, 1, 1),
    ('layer4 3x3 d4 512->512', (33, 33), 3, 512, 512, 1, 4),
    ('layer3 3x3 d2 256->256', (33, 33), 3, 256, 256, 1, 2),
    ('stem 7x7 s2 3->64', (321, 321), 7, 3, 64, 2, 1),
)


def _xla(x, w, s, pad, d):
  return lax.conv_general_dilated(x, w, (s, s), pad, rhs_dilation=(d, d),
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _fns(conv):
  """Jitted forward, input gradient and weight gradient of conv(x, w); all take (x, w, g)."""
  return (jax.jit(lambda x, w, g: conv(x, w)),
          jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0]),
          jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0]))


def bench(convs, args, reps):
  """Median ms of (forward, dx, dw) per conv; runs are interleaved across convs and phases, so
  load changes on a shared machine hit all variants alike."""
  fns = [f for conv in convs for f in _fns(conv)]
  for f in fns:
    jax.block_until_ready(f(*args))  # compile
    jax.block_until_ready(f(*args))  # warm-up
  ts = [[] for _ in fns]
  for _ in range(reps):
    for f, t in zip(fns, ts):
      t0 = time.perf_counter()
      jax.block_until_ready(f(*args))
      t.append(1e3 * (time.perf_counter() - t0))
  med = [statistics.median(t) for t in ts]
  return [med[i:i + 3] for i in range(0, len(med), 3)]


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--reps', type=int, default=7)
  p.add_argument('--batch', type=int, default=2)
  p.add_argument('--only', default='', help='substring filter on the shape name')
  a = p.parse_args(argv)
  rng = np.random.default_rng(0)
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}, batch {a.batch}, float32, '
        f'median of {a.reps} runs (ms), load average {os.getloadavg()[0]:.1f} '
        f'on {os.cpu_count()} CPUs')
  hdr = f'{"convolution":24s} {"impl":22s} {"fwd":>8s} {"dx":>8s} {"dw":>8s} {"total":>8s}'
  print(hdr + '\n' + '-' * len(hdr))
  for name, (h, wd), k, cin, cout, s, d in SHAPES:
    if a.only not in name:
      continue
    pad = ((d * (k - 1) // 2,) * 2,) * 2
    x = jnp.asarray(rng.standard_normal((a.batch, h, wd, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
    g = jnp.asarray(rng.standard_normal(_xla(x, w, s, pad, d).shape), jnp.float32)
    impls = {'xla': lambda x, w: _xla(x, w, s, pad, d)}
    for m in ('auto', 'im2col', 'per_tap') if k > 1 else ('auto',):
      label = f'matmul {m}'
      if m == 'auto':
        label += f' ({auto_strategy(w.shape, g.shape)})'
      impls[label] = (lambda m: lambda x, w: conv2d_matmul_wgrad(x, w, s, pad, d, wgrad=m))(m)
    for label, t in zip(impls, bench(list(impls.values()), (x, w, g), a.reps)):
      print(f'{name:24s} {label:22s} {t[0]:8.1f} {t[1]:8.1f} {t[2]:8.1f} {sum(t):8.1f}',
            flush=True)


if __name__ == '__main__':
  main()
