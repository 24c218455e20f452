"""Spatial resizing of NHWC feature maps and NHW / NHWC label maps (static output sizes).

`resize_bilinear` equals PyTorch `F.interpolate(size=..., mode='bilinear', align_corners=...)` (no
antialiasing; `jax.image.resize` differs when downsampling and has no align_corners=True).
`resize_by_scale` resizes by a factor under one of the reference codebases' rules (`RESIZE_RULES`).
`resize_nearest` equals PIL `Image.resize(..., NEAREST)` bit for bit: it samples the pixel centres.
"""
import fractions
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

SPATIAL_AXES = (1, 2)  # H, W for both NHW and NHWC


def bilinear_source(in_size: int, out_size: int, align_corners: bool,
                    scale: Optional[float] = None
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Lower / upper source index (int32, (out,)) and their weights (float32, (out,)) per output.

  align_corners=False: src = (dst + 0.5) * ratio - 0.5, clamped at 0 (PyTorch half-pixel), with
    ratio = in / out, or 1 / scale when a PyTorch ``scale_factor`` is given.
  align_corners=True:  src = dst * (in - 1) / (out - 1) (0 when out == 1; Caffe ``Interp`` and
    PyTorch, which ignores ``scale_factor`` here).
  Computed in float32 as PyTorch and Caffe do for float32 inputs (float32 division of the sizes;
  1 / scale in float64, then rounded to float32, as PyTorch's ``compute_scales_value``), so the
  source positions equal those of PyTorch's CPU kernel (checked on ramps of 50-513 pixels).
  """
  dst = np.arange(out_size, dtype=np.float32)
  if align_corners:
    ratio = np.float32(in_size - 1) / np.float32(out_size - 1) if out_size > 1 else np.float32(0)
    src = dst * ratio
  else:
    ratio = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    # ratio * (dst + 0.5) - 0.5 with one rounding (a fused multiply-add, as PyTorch's compiled
    # kernels compute it): the float64 product of two float32 values is exact.
    src = (np.float64(ratio) * (dst + np.float32(0.5)).astype(np.float64) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0))
  lower = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  upper_weight = (src - lower.astype(np.float32)).astype(np.float32)
  lower_weight = np.float32(1) - upper_weight
  return lower, upper, lower_weight, upper_weight


def _lerp_axis(x: jax.Array, axis: int, out_size: int, align_corners: bool,
               scale: Optional[float] = None) -> jax.Array:
  in_size = x.shape[axis]
  if in_size == out_size and (scale is None or scale == 1.0 or align_corners):
    return x  # the identity (a scale factor != 1 with equal sizes still moves the samples)
  lower, upper, lower_weight, upper_weight = bilinear_source(in_size, out_size, align_corners,
                                                             scale)
  weight_shape = [1] * x.ndim
  weight_shape[axis] = out_size
  # Weights stay float32, so low-precision inputs are interpolated in float32 (PyTorch opmath).
  w_lower = jnp.asarray(lower_weight.reshape(weight_shape))
  w_upper = jnp.asarray(upper_weight.reshape(weight_shape))
  x_lower = jnp.take(x, lower, axis=axis, mode='clip')
  x_upper = jnp.take(x, upper, axis=axis, mode='clip')
  return (w_lower * x_lower + w_upper * x_upper).astype(x.dtype)


def resize_bilinear(x: jax.Array, size: Sequence[int], align_corners: bool) -> jax.Array:
  """Bilinear resize of x (N, H, W, C), floating point, to (N, size[0], size[1], C).

  Separable gather + linear interpolation (H then W); differentiable; an axis whose size does not
  change is returned untouched (PyTorch is also the identity there).
  """
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f'resize_bilinear needs a floating-point input, got {x.dtype}')
  if x.ndim != 4:
    raise ValueError(f'resize_bilinear expects NHWC, got shape {x.shape}')
  out_h, out_w = (int(s) for s in size)
  x = _lerp_axis(x, 1, out_h, align_corners)
  return _lerp_axis(x, 2, out_w, align_corners)


# Rules for resizing by a factor s (each equals one reference codebase; tests/nn/test_resize.py):
#   pytorch_scale_factor  F.interpolate(x, scale_factor=s, mode='bilinear', align_corners=ac):
#                         out = floor(s * in); half-pixel samples (dst + 0.5) / s - 0.5 (the ratio
#                         is exactly 1 / s, not in / out); ac=True aligns corners instead.
#                         deeplab-pytorch's MSC (ac=False).
#   caffe_interp          Caffe Interp with shrink_factor q then zoom_factor p for s = p / q:
#                         out = p * ((in - 1) // q) + 1 (shrink: (in - 1) / q + 1; zoom:
#                         in + (in - 1) * (p - 1)), corners aligned. The DeepLab v2 prototxt
#                         (0.5 = shrink 2; 0.75 = shrink 4, zoom 3).
#   size                  out = floor(s * in), then a resize to that size (ratio in / out):
#                         cv2 / PIL-style resizing to a computed size (semseg, mmseg TTA), and
#                         jaxseg's MSC before issue 12.
RESIZE_RULES = ('pytorch_scale_factor', 'caffe_interp', 'size')


def caffe_interp_factors(scale: float) -> Tuple[int, int]:
  """(zoom_factor p, shrink_factor q) of Caffe Interp for scale = p / q (q <= 64)."""
  frac = fractions.Fraction(scale).limit_denominator(64)
  if frac <= 0 or abs(float(frac) - scale) > 1e-9:
    raise ValueError(f'caffe_interp needs a positive scale p/q with q <= 64, got {scale}')
  return frac.numerator, frac.denominator


def scaled_size(size: int, scale: float, rule: str = 'pytorch_scale_factor') -> int:
  """Output length of ``resize_by_scale`` for an input length ``size`` (see RESIZE_RULES)."""
  if rule not in RESIZE_RULES:
    raise ValueError(f'unknown resize rule {rule!r}; expected one of {list(RESIZE_RULES)}')
  if rule == 'caffe_interp':
    zoom, shrink = caffe_interp_factors(scale)
    return zoom * ((int(size) - 1) // shrink) + 1
  return int(np.floor(float(size) * scale))  # PyTorch: floor(float(in) * scale_factor)


def rule_align_corners(rule: str, align_corners: Optional[bool] = None) -> bool:
  """The corner convention of a rule: None -> the reference's (True for caffe_interp, else
  False). caffe_interp with align_corners=False raises: Interp always aligns corners."""
  if rule not in RESIZE_RULES:
    raise ValueError(f'unknown resize rule {rule!r}; expected one of {list(RESIZE_RULES)}')
  if rule == 'caffe_interp':
    if align_corners is False:
      raise ValueError("resize rule 'caffe_interp' always aligns corners (Caffe Interp); "
                       'align_corners=False is not one of its modes')
    return True
  return bool(align_corners)


def resize_by_scale(x: jax.Array, scale: float, rule: str = 'pytorch_scale_factor',
                    align_corners: Optional[bool] = None) -> jax.Array:
  """Bilinear resize of x (N, H, W, C) by ``scale`` on both axes under ``rule`` (RESIZE_RULES).

  Returns (N, scaled_size(H, scale, rule), scaled_size(W, scale, rule), C). ``align_corners``
  None means the rule's reference convention (``rule_align_corners``). scale 1.0 is the identity
  under every rule.
  """
  if x.ndim != 4:
    raise ValueError(f'resize_by_scale expects NHWC, got shape {x.shape}')
  corners = rule_align_corners(rule, align_corners)
  if scale == 1.0:
    return x
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f'resize_by_scale needs a floating-point input, got {x.dtype}')
  factor = float(scale) if rule == 'pytorch_scale_factor' else None
  for axis in SPATIAL_AXES:
    x = _lerp_axis(x, axis, scaled_size(x.shape[axis], scale, rule), corners, factor)
  return x


def nearest_source(in_size: int, out_size: int) -> np.ndarray:
  """PIL NEAREST source index of each output pixel, int32 (out,): floor((dst + 0.5) * in / out).

  The coordinate is accumulated in float64 the way PIL does (start at step / 2, add step = in / out
  per pixel), so exact ties such as 8 -> 10, dst 7 (7.5 * 0.8 = 6) round down as they do in PIL.
  """
  step = in_size / out_size
  increments = np.full(out_size, step, dtype=np.float64)
  increments[0] = step * 0.5
  src = np.add.accumulate(increments)  # sequential float64 sums, as PIL's loop
  return np.minimum(src.astype(np.int32), in_size - 1)


def resize_nearest(x: jax.Array, size: Sequence[int]) -> jax.Array:
  """Nearest resize of x (N, H, W) or (N, H, W, C), any dtype (e.g. int labels), to size (h, w)."""
  if x.ndim not in (3, 4):
    raise ValueError(f'resize_nearest expects NHW or NHWC, got shape {x.shape}')
  for axis, out_size in zip(SPATIAL_AXES, size):
    out_size = int(out_size)
    if x.shape[axis] != out_size:
      x = jnp.take(x, nearest_source(x.shape[axis], out_size), axis=axis, mode='clip')
  return x
