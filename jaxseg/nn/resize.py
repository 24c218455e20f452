"""Spatial resizing of NHWC feature maps and NHW / NHWC label maps (static output sizes).

`resize_bilinear` equals PyTorch `F.interpolate(mode='bilinear', align_corners=...)` (no
antialiasing; `jax.image.resize` differs when downsampling and has no align_corners=True).
`resize_nearest` equals PIL `Image.resize(..., NEAREST)` bit for bit: it samples the pixel centres.
"""
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

SPATIAL_AXES = (1, 2)  # H, W for both NHW and NHWC


def bilinear_source(in_size: int, out_size: int,
                    align_corners: bool) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Lower / upper source index (int32, (out,)) and their weights (float32, (out,)) per output.

  align_corners=False: src = (dst + 0.5) * in / out - 0.5, clamped at 0 (PyTorch half-pixel).
  align_corners=True:  src = dst * (in - 1) / (out - 1) (0 when out == 1).
  Computed in float32 as PyTorch does for float32 inputs.
  """
  dst = np.arange(out_size, dtype=np.float32)
  if align_corners:
    scale = np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.float32(0)
    src = dst * scale
  else:
    scale = np.float32(in_size / out_size)
    src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
  lower = np.minimum(np.floor(src).astype(np.int32), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  upper_weight = (src - lower.astype(np.float32)).astype(np.float32)
  lower_weight = np.float32(1) - upper_weight
  return lower, upper, lower_weight, upper_weight


def _lerp_axis(x: jax.Array, axis: int, out_size: int, align_corners: bool) -> jax.Array:
  in_size = x.shape[axis]
  if in_size == out_size:
    return x
  lower, upper, lower_weight, upper_weight = bilinear_source(in_size, out_size, align_corners)
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
