"""The one transposed convolution: PyTorch `ConvTranspose2d(k, stride, padding)` with exact
`stride x` upsampling (k - 2 padding == stride), NHWC / HWIO.

`conv_transpose(x, kernel, stride, padding)` equals
`lax.conv_transpose(x, kernel, (s, s), ((k-1-p, k-1-p),) * 2, dimension_numbers=('NHWC', 'HWIO',
'NHWC'))` (unflipped kernel; a PyTorch weight (Cin, Cout, k, k) maps to
`weight.transpose(2, 3, 0, 1)[::-1, ::-1]`). Flax's `nn.ConvTranspose(strides=(2, 2),
padding='SAME')` with an even kernel is the stride-2 case with padding k / 2 - 1 (PAD-Net).

Output o = s m + r (one axis) reads input m + d with tap t for every t with r + t - P divisible
by s (P = k - 1 - p), d = (r + t - P) / s: the taps of phase r are the strided slice
kernel[t0::s] (t0 = (P - r) mod s). Rather than convolving the zero-dilated input (s^2 - 1 of
every s^2 multiply-adds hit zeros), two ways compute the s^2 phases:
  'split'   one stride-1 convolution per phase (s^2 of them) with its strided-slice sub-kernel
            and its own padding, interleaved; no multiply-add is wasted, and the sub-kernel's
            gradient is a pad (not a scatter-add). The faster for stride 2 (PAD-Net).
  'packed'  ONE stride-1 convolution with a (K, K, Cin, s^2 Cout) kernel gathered from `kernel`
            (K = the window covering every phase's taps; the missing taps are zeros), then a
            pixel shuffle: ~(K / (k / s))^2 more multiply-adds, but one large convolution
            instead of s^2 small ones. The faster for stride 4 and up (DBPN / DSRNet).
`METHOD` 'auto' picks 'split' for stride 2 and 'packed' above (measured: docs/performance.md,
the report of the CTKT branch); a layer's `method` field overrides it. Both go through
`jaxseg.nn.conv2d`, so `impl='matmul'` (the matmul weight gradients) applies.
"""
from typing import Any, Callable, List, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.nn.conv import conv2d, he_normal_fan_out

METHODS = ('auto', 'split', 'packed')
# The default of `conv_transpose(method=None)`; A/B benchmarks patch it:
# `python -m jaxseg.bench ... --patch='jaxseg.nn.deconv.METHOD=packed'`.
METHOD = 'auto'


def _check(x, kernel, stride: int, padding: int):
  k, kw, cin, _ = kernel.shape
  if k != kw:
    raise ValueError(f'conv_transpose needs a square kernel, got {kernel.shape[:2]}')
  if k - 2 * padding != stride or stride < 1:
    raise ValueError(f'conv_transpose needs kernel - 2 * padding == stride (output s * input), '
                     f'got kernel {k}, stride {stride}, padding {padding}')
  if x.ndim != 4 or x.shape[-1] != cin:
    raise ValueError(f'conv_transpose: x {x.shape} (N, H, W, Cin) does not match kernel '
                     f'{kernel.shape} (k, k, Cin, Cout)')


def _phase(k: int, s: int, p: int, r: int) -> Tuple[int, int, Tuple[int, int]]:
  """Phase r (one axis): first tap t0, tap count n (taps t0, t0 + s, ...), input padding."""
  big_p = k - 1 - p
  t0 = (big_p - r) % s
  n = len(range(t0, k, s))
  d0 = (r + t0 - big_p) // s  # input offset of the first tap
  return t0, n, (-d0, d0 + n - 1)


def _interleave(phases: List[List[jax.Array]], s: int) -> jax.Array:
  """phases[rh][rw] (N, H, W, C) -> (N, s H, s W, C), output (s m + rh, s n + rw)."""
  y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # (N, H, s, W, s, C)
  n, h, _, w, _, c = y.shape
  return y.reshape(n, h * s, w * s, c)


def _split(x, kernel, s: int, p: int, impl: str):
  k = kernel.shape[0]
  rows = []
  for rh in range(s):
    th, _, pad_h = _phase(k, s, p, rh)
    cols = []
    for rw in range(s):
      tw, _, pad_w = _phase(k, s, p, rw)
      cols.append(conv2d(x, kernel[th::s, tw::s], padding=(pad_h, pad_w), impl=impl))
    rows.append(cols)
  return _interleave(rows, s)


def _packed_table(k: int, s: int, p: int) -> Tuple[np.ndarray, int, int]:
  """(window, s) tap index per (window position, phase), k = the zero tap; window (lo, hi)."""
  big_p = k - 1 - p
  offsets = {(r, t): (r + t - big_p) // s for r in range(s) for t in range(k)
             if (r + t - big_p) % s == 0}
  lo, hi = min(offsets.values()), max(offsets.values())
  table = np.full((hi - lo + 1, s), k, np.int32)
  for (r, t), d in offsets.items():
    table[d - lo, r] = t
  return table, lo, hi


def _packed(x, kernel, s: int, p: int, impl: str):
  k, _, cin, cout = kernel.shape
  table, lo, hi = _packed_table(k, s, p)
  win = table.shape[0]
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))  # tap k is zero
  packed = padded[table]                       # (win, s[rh], k + 1, Cin, Cout)
  packed = jnp.take(packed, table, axis=2)     # (win, s[rh], win, s[rw], Cin, Cout)
  packed = packed.transpose(0, 2, 4, 1, 3, 5).reshape(win, win, cin, s * s * cout)
  y = conv2d(x, packed, padding=((-lo, hi), (-lo, hi)), impl=impl)  # (N, H, W, s*s*Cout)
  n, h, w, _ = y.shape
  y = y.reshape(n, h, w, s, s, cout).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, h * s, w * s, cout)


def resolve_method(stride: int, method: Optional[str] = None) -> str:
  """'split' or 'packed' for `stride` (None: the module's `METHOD`; 'auto': by stride)."""
  method = METHOD if method is None else method
  if method not in METHODS:
    raise ValueError(f'conv_transpose method must be one of {METHODS}, got {method!r}')
  if method == 'auto':
    return 'split' if stride <= 2 else 'packed'
  return method


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int, padding: int,
                   impl: str = 'xla', method: Optional[str] = None) -> jax.Array:
  """(N, H, W, Cin) x (k, k, Cin, Cout) -> (N, s H, s W, Cout); see the module docstring."""
  s, p = int(stride), int(padding)
  _check(x, kernel, s, p)
  if resolve_method(s, method) == 'split':
    return _split(x, kernel, s, p, impl)
  return _packed(x, kernel, s, p, impl)


class ConvTranspose(nn.Module):
  """`conv_transpose` as a layer: params `kernel` (k, k, Cin, features), `bias` (features,).

  `padding` None is (k - stride) / 2 (for stride 2 and an even k: Flax's 'SAME' transposed
  convolution, PyTorch padding k / 2 - 1). Default init He-normal fan-out, untruncated
  (PyTorch `kaiming_normal_` on a ConvTranspose2d weight reads kh kw Cout as its fan-in),
  zero bias. `method` None follows the module's `METHOD`.
  """
  features: int
  kernel_size: int = 4
  stride: int = 2
  padding: Optional[int] = None
  use_bias: bool = False
  kernel_init: Callable[..., jax.Array] = he_normal_fan_out()
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros
  impl: str = 'xla'
  method: Optional[str] = None
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, s = self.kernel_size, self.stride
    p = (k - s) // 2 if self.padding is None else self.padding
    kernel = self.param('kernel', self.kernel_init, (k, k, x.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = conv_transpose(x, kernel, s, p, self.impl, self.method)
    return y if bias is None else y + bias
