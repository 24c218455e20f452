"""Stride-2 transposed convolution (exact 2x upsampling) as four sub-pixel convolutions.

`conv_transpose_2x(x, kernel)` equals `flax.linen.ConvTranspose(strides=(2, 2), padding='SAME')`
(i.e. `lax.conv_transpose` with an unflipped HWIO kernel) for even kernel sizes, with the same
kernel array. Rather than convolving the zero-dilated input (3/4 of the multiply-adds hit zeros,
and XLA-CPU's gradients of that convolution are slow), each of the four output phases
(row parity r, column parity c) is an ordinary stride-1 convolution of `x` with the kernel taps of
that parity, and the phases are interleaved:

  y[2m + r] = sum_t x[m + (r + t - p) / 2] K[t]   over taps t with r + t - p even,  p = k / 2

(one axis shown; p is lax's 'SAME' transposed-convolution padding).

`impl='matmul'` with ONE_GEMM (off by default, see there) computes all four phases with ONE
matrix product
  z = x (N*H*W, Cin) @ kernel (Cin, k*k*Cout)
followed by shifted sums of the thin tap outputs z[..., t_h, t_w, :] (each tap belongs to exactly
one phase, at input offset (r + t - p) / 2 in {-1, 0, 1} for k = 4). Its autodiff is again one
matmul each for dx and dkernel. Otherwise each phase is convolved through `jaxseg.nn.conv2d`
(its sub-kernel a strided slice of the kernel, whose gradient is a pad, not a gather's scatter-add).

Layouts: x (N, H, W, Cin), kernel (k, k, Cin, Cout) -> (N, 2H, 2W, Cout).
"""
from typing import Any, Callable, List, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxseg.nn.conv import DIMENSION_NUMBERS, conv2d, he_normal_fan_out

# False: lax.conv_transpose on the zero-dilated input (XLA's own), for A/B benchmarks only:
# `python -m jaxseg.benchmark ... --patch='jaxseg.nn.deconv.SUBPIXEL=False'`.
SUBPIXEL = True
# impl='matmul': True = all four phases as one GEMM to k*k*Cout channels plus shifted sums; False
# (default) = four sub-pixel convolutions through conv2d. True measured 3.4x SLOWER on the PAD-Net
# step (docs/performance.md): the transpose of each tap slice of z is a pad into a zero buffer of
# z's full size (k*k of them per deconvolution). A/B: --patch='jaxseg.nn.deconv.ONE_GEMM=true'.
ONE_GEMM = False


def _phase_taps(k: int, r: int) -> Tuple[List[int], Tuple[int, int]]:
  """Kernel taps of output parity r (one axis) and the (low, high) input padding they need."""
  p = k // 2  # lax._conv_transpose_padding(k, 2, 'SAME')[0] for even k
  taps = [t for t in range(k) if (r + t - p) % 2 == 0]
  first = (r + taps[0] - p) // 2  # input offset of the first tap
  return taps, (-first, first + len(taps) - 1)


def _tap_offset(k: int, t: int) -> Tuple[int, int]:
  """(output parity, input offset) of kernel tap t (one axis): y[2m + r] += x[m + d] K[t]."""
  p = k // 2
  r = (t - p) % 2
  return r, (r + t - p) // 2


def _one_gemm(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """All four phases as x @ kernel (Cin, k*k*Cout) plus shifted sums; see the module docstring."""
  dtype = jnp.result_type(x.dtype, kernel.dtype)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  n, h, w, cin = x.shape
  kh, kw, _, cout = kernel.shape
  k_all = kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
  z = lax.dot_general(x, k_all, (((3,), (0,)), ((), ())), preferred_element_type=jnp.float32)
  z = z.reshape(n, h, w, kh, kw, cout)
  rows_h, rows_w = [_tap_offset(kh, t) for t in range(kh)], [_tap_offset(kw, t) for t in range(kw)]
  ph, pw = max(abs(d) for _, d in rows_h), max(abs(d) for _, d in rows_w)
  zp = jnp.pad(z, ((0, 0), (ph, ph), (pw, pw), (0, 0), (0, 0), (0, 0)))
  phase = {}
  for th, (r, dh) in enumerate(rows_h):
    for tw, (c, dw) in enumerate(rows_w):
      part = zp[:, ph + dh:ph + dh + h, pw + dw:pw + dw + w, th, tw, :]
      phase[r, c] = part if (r, c) not in phase else phase[r, c] + part
  rows = [jnp.stack([phase[r, 0], phase[r, 1]], axis=3) for r in (0, 1)]  # (N, H, W, 2[c], C)
  y = jnp.stack(rows, axis=2)  # (N, H, 2[r], W, 2[c], Cout)
  return y.reshape(n, 2 * h, 2 * w, cout).astype(dtype)


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
  if impl == 'matmul' and ONE_GEMM:
    return _one_gemm(x, kernel)
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
