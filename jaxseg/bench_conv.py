"""Micro-benchmark: XLA convolutions vs `conv2d_matmul_wgrad` on dilated-ResNet shapes.

  python -m jaxseg.bench_conv [--reps 7] [--batch 2] [--only stem]

Times (median ms over --reps runs after warm-up, `block_until_ready`) the forward, the input
gradient and the weight gradient of each convolution, each compiled on its own with `jax.jit`
(the unused half of the VJP is removed by XLA). Rows: 'xla' (`lax.conv_general_dilated` and
its autodiff), 'matmul' (wgrad='auto'), and for KxK kernels both explicit strategies.
Inputs are float32 NHWC / HWIO. On a shared machine expect 10-15% noise between runs.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.nn.conv_vjp import conv2d_matmul_wgrad

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


def _time(fn, args, reps):
  jax.block_until_ready(fn(*args))  # compile
  jax.block_until_ready(fn(*args))  # warm-up
  ts = []
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    ts.append(time.perf_counter() - t0)
  return 1e3 * statistics.median(ts)


def bench(conv, x, w, g, reps):
  """Median ms of (forward, input gradient, weight gradient) of conv(x, w)."""
  fwd = jax.jit(conv)
  dx = jax.jit(lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
  dw = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
  return (_time(fwd, (x, w), reps), _time(dx, (x, w, g), reps), _time(dw, (x, w, g), reps))


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--reps', type=int, default=7)
  p.add_argument('--batch', type=int, default=2)
  p.add_argument('--only', default='', help='substring filter on the shape name')
  a = p.parse_args(argv)
  rng = np.random.default_rng(0)
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}, batch {a.batch}, float32, '
        f'median of {a.reps} runs (ms)')
  hdr = f'{"convolution":24s} {"impl":15s} {"fwd":>8s} {"dx":>8s} {"dw":>8s} {"total":>8s}'
  print(hdr + '\n' + '-' * len(hdr))
  for name, (h, wd), k, cin, cout, s, d in SHAPES:
    if a.only not in name:
      continue
    pad = ((d * (k - 1) // 2,) * 2,) * 2
    x = jnp.asarray(rng.standard_normal((a.batch, h, wd, cin)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
    g = jnp.asarray(rng.standard_normal(_xla(x, w, s, pad, d).shape), jnp.float32)
    impls = [('xla', lambda x, w: _xla(x, w, s, pad, d)), ('matmul', 'auto')]
    if k > 1:
      impls += [('matmul im2col', 'im2col'), ('matmul per_tap', 'per_tap')]
    for label, impl in impls:
      if isinstance(impl, str):
        impl = (lambda m: lambda x, w: conv2d_matmul_wgrad(x, w, s, pad, d, wgrad=m))(impl)
      t = bench(impl, x, w, g, a.reps)
      print(f'{name:24s} {label:15s} {t[0]:8.1f} {t[1]:8.1f} {t[2]:8.1f} {sum(t):8.1f}',
            flush=True)


if __name__ == '__main__':
  main()
