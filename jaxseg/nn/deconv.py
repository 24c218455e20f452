"""Stride-2 transposed convolution (exact 2x upsampling) as four sub-pixel convolutions.

`conv_transpose_2x(x, kernel)` equals `flax.linen.ConvTranspose(strides=(2, 2), padding='SAME')`
(i.e. `lax.conv_transpose` with an unflipped HWIO kernel) for even kernel sizes, with the same
kernel array. Rather than convolving the zero-dilated input (3/4 of the multiply-adds hit zeros,
and XLA-CPU's gradients of that convolution are slow), each of the four output phases
(row parity r, column parity c) is an ordinary stride-1 convolution of `x` with the kernel taps of
that parity, and the phases are interleaved:

  y[2m + r] = sum_t x[m + (r + t - p) / 2] K[t]   over taps t with r + t - p even,  p = k / 2

(one axis shown; p is lax's 'SAME' transposed-convolution padding).

Each phase is convolved through `jaxseg.nn.conv2d` (so `impl='matmul'` gives it the fast weight
gradient), its sub-kernel a strided slice of the kernel (whose gradient is a pad, not a gather's
scatter-add). Computing all four phases as one GEMM to k*k*Cout channels plus shifted sums was
measured 3.4-3.9x slower on the PAD-Net step and removed (docs/performance.md; commit d7acace).

Layouts: x (N, H, W, Cin), kernel (k, k, Cin, Cout) -> (N, 2H, 2W, Cout).
"""
from typing import Any, Callable, List, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.nn.conv import DIMENSION_NUMBERS, conv2d, he_normal_fan_out

# False: lax.conv_transpose on the zero-dilated input (XLA's own), for A/B benchmarks only:
# `python -m jaxseg.bench ... --patch='jaxseg.nn.deconv.SUBPIXEL=False'`.
SUBPIXEL = True


def _phase_taps(k: int, r: int) -> Tuple[List[int], Tuple[int, int]]:
  """Kernel taps of output parity r (one axis) and the (low, high) input padding they need."""
  p = k // 2  # lax._conv_transpose_padding(k, 2, 'SAME')[0] for even k
  taps = [t for t in range(k) if (r + t - p) % 2 == 0]
  first = (r + taps[0] - p) // 2  # input offset of the first tap
  return taps, (-first, first + len(taps) - 1)


def conv_transpose_2x(x: jax.Array, kernel: jax.Array, impl: str = 'xla') -> jax.Array:
  """(N, H, W, Cin) x (k, k, Cin, Cout) -> (N, 2H, 2W, Cout); even k; see the module docstring."""
  kh, kw = kernel.shape[:2]
  if kh % 2 or kw % 2:
    raise ValueError(f'conv_transpose_2x needs an even kernel size, got {kernel.shape[:2]}')
  if x.ndim != 4 or x.shape[-1] != kernel.shape[2]:
    raise ValueError(f'conv_transpose_2x: x {x.shape} (N, H, W, Cin) does not match kernel '
                     f'{kernel.shape} (k, k, Cin, Cout)')
  if not SUBPIXEL:
    return jax.lax.conv_transpose(x, kernel, (2, 2), 'SAME', dimension_numbers=DIMENSION_NUMBERS)
  n, h, w, _ = x.shape
  rows = []
  for r in (0, 1):
    taps_h, pad_h = _phase_taps(kh, r)
    cols = []
    for c in (0, 1):
      taps_w, pad_w = _phase_taps(kw, c)
      # Every other tap: a static strided slice (its gradient is a pad, not a scatter-add).
      sub = kernel[taps_h[0]::2, taps_w[0]::2]
      cols.append(conv2d(x, sub, padding=(pad_h, pad_w), impl=impl))
    rows.append(jnp.stack(cols, axis=3))  # (N, H, W, 2[c], Cout)
  y = jnp.stack(rows, axis=2)  # (N, H, 2[r], W, 2[c], Cout)
  return y.reshape(n, 2 * h, 2 * w, kernel.shape[3])


class ConvTranspose2x(nn.Module):
  """Drop-in for `nn.ConvTranspose(features, (k, k), strides=(2, 2), padding='SAME')`: same param
  `kernel` (k, k, Cin, features), same output; optional bias. He-normal fan-out init."""
  features: int
  kernel_size: int = 4
  use_bias: bool = False
  impl: str = 'xla'
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable[..., jax.Array] = he_normal_fan_out()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init, (k, k, x.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', nn.initializers.zeros, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = conv_transpose_2x(x, kernel, self.impl)
    return y if bias is None else y + bias
