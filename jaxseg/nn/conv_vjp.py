"""Dilated 2-D convolution whose weight gradient is computed as matrix products.

XLA-CPU lowers a convolution's weight gradient to a forward convolution with batch and channels
swapped, which its convolution backend runs 5-7x slower than the forward pass (design issue 6,
cpu_performance spec). `conv2d_matmul_wgrad` keeps XLA's forward and input-gradient convolutions
and computes the weight gradient as float32-accumulated GEMMs contracting M = N*Ho*Wo:

- 1x1 kernels: the forward too is a strided slice and one matmul (faster than XLA's 1x1
  convolution); weight gradient is one matmul.
- KxK kernels: 'im2col' (the K*K shifted windows concatenated along channels into one
  (M, K*K*Cin) patch matrix, one matmul) or 'per_tap' (K*K matmuls, no patch buffer).
  `python -m jaxseg.bench_conv` compares them with XLA.

Layouts: x (N, H, W, Cin), kernel (KH, KW, Cin, Cout), output (N, Ho, Wo, Cout).
"""

import functools
from typing import Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax

_DN = ('NHWC', 'HWIO', 'NHWC')
# wgrad='auto' for KxK kernels: im2col when Cin >= PER_TAP_MIN_CIN and N*Ho*Wo <= IM2COL_MAX_ROWS
# (short contractions make per-tap GEMMs inefficient), one GEMM per tap otherwise (the RGB stem,
# large feature maps: no K*K-times patch buffer). Measured on a shared 2-core x86 (bench_conv).
PER_TAP_MIN_CIN = 16
IM2COL_MAX_ROWS = 1024
_WGRAD = ('auto', 'im2col', 'per_tap')


def _pair(v) -> tuple[int, int]:
  if isinstance(v, int):
    return (int(v), int(v))
  a, b = v
  return (int(a), int(b))


def _pads(padding, kernel_hw, strides, dilation, in_hw) -> tuple[tuple[int, int], ...]:
  """Normalises 'SAME'/'VALID', an int, or ((top, bottom), (left, right)) to a tuple of pairs."""
  if isinstance(padding, str):
    eff = [d * (k - 1) + 1 for k, d in zip(kernel_hw, dilation)]
    return tuple(lax.padtype_to_pads(in_hw, eff, strides, padding))
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  return tuple(_pair(p) for p in padding)


def _windows(x, taps_hw, out_hw, strides, dilation, axes=(1, 2)):
  """Yields, row-major over taps, the (strided, dilated) window of padded `x` that tap (i, j)
  multiplies: x[..., i*dh + sh*oh, j*dw + sw*ow, ...] over the output grid, spatial `axes`."""
  (kh, kw), (ho, wo), (sh, sw), (dh, dw) = taps_hw, out_hw, strides, dilation
  ah, aw = axes
  for i in range(kh):
    for j in range(kw):
      start, limit, step = [0] * x.ndim, list(x.shape), [1] * x.ndim
      start[ah], limit[ah], step[ah] = i * dh, i * dh + (ho - 1) * sh + 1, sh
      start[aw], limit[aw], step[aw] = j * dw, j * dw + (wo - 1) * sw + 1, sw
      yield lax.slice(x, start, limit, step)


def _pad(x, padding):
  if all(p == (0, 0) for p in padding):
    return x
  zero = jnp.zeros((), x.dtype)
  return lax.pad(x, zero, ((0, 0, 0), *((lo, hi, 0) for lo, hi in padding), (0, 0, 0)))


def _mm(a, b):
  """a @ b accumulated in float32 ((P, M) @ (M, Q) -> (P, Q) float32)."""
  return lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.float32)


def _tn(a, b):
  """a^T @ b for a (M, P), b (M, Q) -> (P, Q) float32; transposes the narrower operand."""
  if a.shape[1] <= b.shape[1]:
    return _mm(a.T, b)
  return _mm(b.T, a).T


def _forward(x, kernel, strides, padding, dilation):
  """NHWC x HWIO -> NHWC in the common dtype of x and kernel."""
  dtype = jnp.result_type(x.dtype, kernel.dtype)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  kh, kw, cin, cout = kernel.shape
  if (kh, kw) == (1, 1):
    xs = _pad(x, padding)[:, ::strides[0], ::strides[1], :]
    y = lax.dot_general(xs, kernel[0, 0], (((3,), (0,)), ((), ())),
                        preferred_element_type=jnp.float32)
    return y.astype(dtype)
  return lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
                                  dimension_numbers=_DN)


def auto_strategy(kernel_shape, out_shape) -> str:
  """The weight-gradient strategy wgrad='auto' picks for HWIO kernel_shape, NHWC out_shape."""
  kh, kw, cin, _ = kernel_shape
  if (kh, kw) == (1, 1):
    return 'matmul'
  m = out_shape[0] * out_shape[1] * out_shape[2]
  return 'im2col' if cin >= PER_TAP_MIN_CIN and m <= IM2COL_MAX_ROWS else 'per_tap'


def _weight_grad(x, g, kernel_shape, strides, padding, dilation, wgrad):
  """dL/dkernel (KH, KW, Cin, Cout) float32 from x (N, H, W, Cin) and g (N, Ho, Wo, Cout)."""
  kh, kw, cin, cout = kernel_shape
  n, ho, wo, _ = g.shape
  m = n * ho * wo
  xp = _pad(x, padding)
  g2 = g.reshape(m, cout)
  if wgrad == 'auto':
    wgrad = auto_strategy(kernel_shape, g.shape)
  if (kh, kw) == (1, 1) or wgrad == 'im2col':
    # One GEMM: patches (M, KH*KW*Cin), channel order (i, j, c) matches HWIO's reshape.
    wins = list(_windows(xp, (kh, kw), (ho, wo), strides, dilation))
    patches = wins[0] if len(wins) == 1 else jnp.concatenate(wins, axis=-1)
    return _tn(patches.reshape(m, kh * kw * cin), g2).reshape(kh, kw, cin, cout)
  # One GEMM per tap, contracting M; the narrower operand is transposed once, up front.
  taps_args = ((kh, kw), (ho, wo), strides, dilation)
  if cin < cout:  # x -> (Cin, N, Hp, Wp): each tap window is (Cin, M) @ g (M, Cout).
    xt = xp.transpose(3, 0, 1, 2)
    taps = [_mm(w.reshape(cin, m), g2) for w in _windows(xt, *taps_args, axes=(2, 3))]
  else:  # g -> (Cout, M): each tap is g^T (Cout, M) @ window (M, Cin), transposed back.
    gt = g2.T
    taps = [_mm(gt, w.reshape(m, cin)).T for w in _windows(xp, *taps_args)]
  return jnp.stack(taps).reshape(kh, kw, cin, cout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv(x, kernel, strides, padding, dilation, wgrad):
  return _forward(x, kernel, strides, padding, dilation)


def _conv_fwd(x, kernel, strides, padding, dilation, wgrad):
  return _forward(x, kernel, strides, padding, dilation), (x, kernel)


def _conv_bwd(strides, padding, dilation, wgrad, res, g):
  x, kernel = res
  dtype = g.dtype
  xc, kc = x.astype(dtype), kernel.astype(dtype)
  # Input gradient: XLA's own transpose of the (linear in x) forward.
  fwd_x = lambda v: _forward(v, kc, strides, padding, dilation)
  dx, = jax.linear_transpose(fwd_x, jax.ShapeDtypeStruct(x.shape, dtype))(g)
  dk = _weight_grad(xc, g, kernel.shape, strides, padding, dilation, wgrad)
  return dx.astype(x.dtype), dk.astype(kernel.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d_matmul_wgrad(x: jax.Array,
                        kernel: jax.Array,
                        strides: Union[int, Sequence[int]] = 1,
                        padding: Union[str, int, Sequence[Sequence[int]]] = ((0, 0), (0, 0)),
                        dilation: Union[int, Sequence[int]] = 1,
                        feature_group_count: int = 1,
                        wgrad: str = 'auto') -> jax.Array:
  """Dilated conv, x (N, H, W, Cin) * kernel (KH, KW, Cin, Cout) -> (N, Ho, Wo, Cout).

  Same result as `lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))`, with a custom VJP: input gradient by XLA's
  transpose, weight gradient as float32-accumulated matrix products returned in kernel.dtype.

  Args:
    strides, dilation: int or (h, w). padding: ((top, bottom), (left, right)), an int, or
      'SAME'/'VALID'. All static Python values.
    feature_group_count: only 1 uses the matmul path; grouped convolutions fall back to plain
      `lax.conv_general_dilated` and XLA's own gradients.
    wgrad: KxK weight-gradient strategy: 'im2col' (one GEMM over a K*K*Cin patch matrix),
      'per_tap' (K*K GEMMs) or 'auto' (im2col for Cin >= PER_TAP_MIN_CIN and
      N*Ho*Wo <= IM2COL_MAX_ROWS, else per_tap). Ignored for 1x1 kernels (one GEMM).
  """
  if wgrad not in _WGRAD:
    raise ValueError(f'wgrad must be one of {_WGRAD}, got {wgrad!r}')
  strides, dilation = _pair(strides), _pair(dilation)
  padding = _pads(padding, kernel.shape[:2], strides, dilation, x.shape[1:3])
  if feature_group_count != 1:
    return lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
                                    dimension_numbers=_DN,
                                    feature_group_count=feature_group_count)
  if x.ndim != 4 or kernel.ndim != 4 or x.shape[3] != kernel.shape[2]:
    raise ValueError(f'expected x NHWC and kernel HWIO with matching Cin, got {x.shape}, '
                     f'{kernel.shape}')
  return _conv(x, kernel, strides, padding, dilation, wgrad)
