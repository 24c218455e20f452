"""Dilated 2-D convolution whose weight gradient is computed as matrix products.

XLA-CPU lowers a convolution's weight gradient to a forward convolution with batch and channels
swapped, which its convolution backend runs 5-7x slower than the forward pass (design issue 6,
cpu_performance spec). `conv2d_matmul_wgrad` keeps XLA's forward and input-gradient convolutions
and computes the weight gradient as float32-accumulated GEMMs contracting M = N*Ho*Wo:

- 1x1 kernels: the forward too is a strided slice and one matmul (faster than XLA's 1x1
  convolution); weight gradient is one matmul.
- KxK kernels: 'im2col' (the K*K shifted windows concatenated along channels into one
  (M, K*K*Cin) patch matrix, one matmul) or 'per_tap' (K*K matmuls, no patch buffer).
  `python -m jaxseg.bench.conv` compares them with XLA.
- Stride-1 KxK kernels: 'gshift' (the default there): one matmul of the input (M_in, Cin) with
  the K*K shifted copies of the output gradient (M_in, K*K*Cout); only the gradient is sliced.
- Narrow KxK kernels (stride 1, K*K*Cout <= Cin / NARROW_MIN_RATIO, e.g. DeepLab's ASPP: 3x3,
  2048 -> 21 classes, dilation up to 24): 'narrow' computes the whole convolution as ONE matmul
  x (M, Cin) @ kernel (Cin, K*K*Cout) followed by shifting and summing the K*K thin (M, Cout)
  tap outputs (zero fill at the borders; taps that fall wholly outside are skipped). Its
  autodiff is again one matmul each for dx and dkernel, and neither XLA's slow narrow-output
  convolution nor a padded copy and K*K windows of the wide input are needed (issue 6 profile:
  the ASPP was 13% of the DeepLab v2 ResNet-101 train step for 1.2% of its FLOPs).

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
# wgrad='auto' for stride-1 KxK kernels: 'narrow' when Cin >= NARROW_MIN_RATIO * K*K*Cout, else
# 'gshift' (AUTO_GSHIFT; False: im2col / per_tap as for strided kernels).
NARROW_MIN_RATIO = 2
AUTO_GSHIFT = True
_WGRAD = ('auto', 'im2col', 'per_tap', 'narrow', 'gshift')


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


def _is_narrow(kernel_shape, strides) -> bool:
  kh, kw, cin, cout = kernel_shape
  return ((kh, kw) != (1, 1) and tuple(strides) == (1, 1)
          and cin >= NARROW_MIN_RATIO * kh * kw * cout)


def auto_strategy(kernel_shape, out_shape, strides=None) -> str:
  """The strategy wgrad='auto' picks for an HWIO kernel_shape and NHWC out_shape: 'matmul' (1x1);
  for strides (1, 1) 'narrow' or 'gshift'; for other (or unspecified) strides 'im2col' or
  'per_tap' by shape."""
  kh, kw, cin, _ = kernel_shape
  if (kh, kw) == (1, 1):
    return 'matmul'
  if strides is not None and tuple(strides) == (1, 1):
    if _is_narrow(kernel_shape, strides):
      return 'narrow'
    if AUTO_GSHIFT:
      return 'gshift'
  m = out_shape[0] * out_shape[1] * out_shape[2]
  return 'im2col' if cin >= PER_TAP_MIN_CIN and m <= IM2COL_MAX_ROWS else 'per_tap'


def _narrow(x, kernel, padding, dilation):
  """Stride-1 convolution as x @ kernel (Cin, K*K*Cout) plus shifted sums of the thin tap
  outputs; plain JAX (its autodiff is two more matmuls). NHWC x HWIO -> NHWC, common dtype."""
  dtype = jnp.result_type(x.dtype, kernel.dtype)
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  kh, kw, cin, cout = kernel.shape
  n, h, w, _ = x.shape
  (pt, pb), (pl, pr) = padding
  dh, dw = dilation
  ho, wo = h + pt + pb - dh * (kh - 1), w + pl + pr - dw * (kw - 1)
  # Tap (i, j) reads x[o + i*dh - pt]: as a pad of its (H, W) output plane, low padding
  # pt - i*dh (negative = crop). Taps whose plane misses the output entirely are skipped.
  taps = []
  for i in range(kh):
    for j in range(kw):
      lo_h, lo_w = pt - i * dh, pl - j * dw
      if lo_h < ho and lo_h + h > 0 and lo_w < wo and lo_w + w > 0:
        taps.append((i * kw + j, lo_h, lo_w))
  if not taps:
    return jnp.zeros((n, ho, wo, cout), dtype)
  k_all = kernel.reshape(kh * kw, cin, cout)[jnp.asarray([t for t, _, _ in taps])]
  k_all = k_all.transpose(1, 0, 2).reshape(cin, len(taps) * cout)
  z = lax.dot_general(x, k_all, (((3,), (0,)), ((), ())), preferred_element_type=jnp.float32)
  z = z.reshape(n, h, w, len(taps), cout)
  y = None
  zero = jnp.zeros((), z.dtype)
  for k, (_, lo_h, lo_w) in enumerate(taps):
    yt = lax.pad(z[:, :, :, k, :], zero,
                 ((0, 0, 0), (lo_h, ho - h - lo_h, 0), (lo_w, wo - w - lo_w, 0), (0, 0, 0)))
    y = yt if y is None else y + yt
  return y.astype(dtype)


def _gshift_weight_grad(x, g, kernel_shape, padding, dilation):
  """Stride-1 weight gradient as ONE matmul x (M_in, Cin)^T @ G (M_in, K*K*Cout), G being the
  output gradient shifted once per tap (zero fill) and concatenated along channels. Only `g`
  is sliced: nothing here depends on `x` alone, so XLA cannot hoist K*K windows of the input
  into the forward pass and keep them alive until the backward (which the x-window strategies
  let it do: +0.6 GB at DeepLab v2 ResNet-101 321x321, docs/performance.md)."""
  kh, kw, cin, cout = kernel_shape
  n, h, w, _ = x.shape
  _, ho, wo, _ = g.shape
  (pt, _), (pl, _) = padding
  dh, dw = dilation
  zero = jnp.zeros((), g.dtype)
  # dk[i, j] = sum_o xpad[o + (i*dh, j*dw)]^T g[o] = sum_q x[q]^T g[q + (pt - i*dh, pl - j*dw)].
  shifted = []
  for i in range(kh):
    for j in range(kw):
      lo_h, lo_w = i * dh - pt, j * dw - pl
      shifted.append(lax.pad(g, zero, ((0, 0, 0), (lo_h, h - ho - lo_h, 0),
                                       (lo_w, w - wo - lo_w, 0), (0, 0, 0))))
  gs = jnp.concatenate(shifted, axis=-1).reshape(n * h * w, kh * kw * cout)
  dk = _tn(x.reshape(n * h * w, cin), gs)  # (Cin, KH*KW*Cout)
  return dk.reshape(cin, kh, kw, cout).transpose(1, 2, 0, 3)


def _weight_grad(x, g, kernel_shape, strides, padding, dilation, wgrad):
  """dL/dkernel (KH, KW, Cin, Cout) float32 from x (N, H, W, Cin) and g (N, Ho, Wo, Cout)."""
  kh, kw, cin, cout = kernel_shape
  if wgrad == 'gshift':
    return _gshift_weight_grad(x, g, kernel_shape, padding, dilation)
  n, ho, wo, _ = g.shape
  m = n * ho * wo
  xp = _pad(x, padding)
  g2 = g.reshape(m, cout)
  if wgrad == 'auto':
    wgrad = auto_strategy(kernel_shape, g.shape)  # strided or AUTO_GSHIFT off: x windows
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
      'per_tap' (K*K GEMMs), 'narrow' (stride 1 only, else 'auto': the whole convolution as one
      GEMM to K*K*Cout channels plus shifted sums, see the module docstring), 'gshift' (stride 1
      only, else 'auto': one GEMM of the input with the K*K-times shifted output gradient) or
      'auto' (stride 1: narrow for Cin >= NARROW_MIN_RATIO * K*K*Cout, else gshift; strided:
      im2col for Cin >= PER_TAP_MIN_CIN and N*Ho*Wo <= IM2COL_MAX_ROWS, else per_tap). Ignored
      for 1x1 kernels (one GEMM).
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
  if kernel.shape[:2] != (1, 1) and strides == (1, 1):
    if wgrad == 'narrow' or (wgrad == 'auto' and _is_narrow(kernel.shape, strides)):
      return _narrow(x, kernel, padding, dilation)
    if wgrad == 'auto' and AUTO_GSHIFT:
      wgrad = 'gshift'
  if wgrad in ('narrow', 'gshift') and strides != (1, 1):
    wgrad = 'auto'  # stride-1 strategies
  return _conv(x, kernel, strides, padding, dilation, wgrad)
