"""Pooling on NHWC inputs: Caffe/PyTorch max-pool rounding and PyTorch adaptive average pooling."""
from typing import Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.nn.conv import as_pair

IntOrPair = Union[int, Sequence[int]]


def pool_output_size(size: int, window: int, stride: int, padding: int, ceil_mode: bool) -> int:
  """PyTorch/Caffe pooling output length.

  floor: (size + 2p - k) // s + 1. ceil: ceil((size + 2p - k) / s) + 1, minus one when the last
  window would start in the bottom/right padding (at or beyond size + p).
  """
  span = size + 2 * padding - window
  if span < 0:
    raise ValueError(f'pooling window {window} larger than padded input {size + 2 * padding}')
  out = -(-span // stride) + 1 if ceil_mode else span // stride + 1
  if ceil_mode and (out - 1) * stride >= size + padding:
    out -= 1
  return out


def _axis_padding(size: int, window: int, stride: int, padding: int,
                  ceil_mode: bool) -> Tuple[int, int]:
  """(low, high) padding such that reduce_window yields `pool_output_size` outputs."""
  out = pool_output_size(size, window, stride, padding, ceil_mode)
  high = max(padding, (out - 1) * stride + window - size - padding)
  return padding, high


def max_pool(x: jax.Array, window: IntOrPair = 3, stride: IntOrPair = 2, padding: IntOrPair = 1,
             ceil_mode: bool = False) -> jax.Array:
  """Max pooling of x (N, H, W, C) with padding by -inf and PyTorch `MaxPool2d` output sizes.

  `ceil_mode=True` is Caffe rounding (DeepLab v2: 321 -> 161 -> ..., 8x8 k3 s2 p1 -> 5x5); the
  extra window at the end is made by padding more at the bottom/right.
  """
  (kh, kw), (sh, sw) = as_pair(window, 'window'), as_pair(stride, 'stride')
  ph, pw = as_pair(padding, 'padding')
  pads = ((0, 0), _axis_padding(x.shape[1], kh, sh, ph, ceil_mode),
          _axis_padding(x.shape[2], kw, sw, pw, ceil_mode), (0, 0))
  # A concrete NumPy identity, so that JAX recognises the max monoid (and can differentiate it).
  if jnp.issubdtype(x.dtype, jnp.floating):
    init = np.array(-np.inf, x.dtype)
  else:
    init = np.array(jnp.iinfo(x.dtype).min, x.dtype)
  y = lax.reduce_window(x, init, lax.max, (1, kh, kw, 1), (1, sh, sw, 1), pads)
  expected = (pool_output_size(x.shape[1], kh, sh, ph, ceil_mode),
              pool_output_size(x.shape[2], kw, sw, pw, ceil_mode))
  assert y.shape[1:3] == expected, (y.shape, expected)
  return y


def adaptive_bin_edges(size: int, bins: int) -> Tuple[Tuple[int, int], ...]:
  """PyTorch AdaptiveAvgPool bin i spans [floor(i * size / bins), ceil((i + 1) * size / bins))."""
  return tuple((i * size // bins, -(-(i + 1) * size // bins)) for i in range(bins))


def _adaptive_mean_axis(x: jax.Array, axis: int, bins: int) -> jax.Array:
  size = x.shape[axis]
  if size % bins == 0:  # equal, disjoint bins: one reshape + mean
    shape = x.shape[:axis] + (bins, size // bins) + x.shape[axis + 1:]
    return jnp.mean(x.reshape(shape), axis=axis + 1)
  means = [jnp.mean(lax.slice_in_dim(x, start, stop, axis=axis), axis=axis, keepdims=True)
           for start, stop in adaptive_bin_edges(size, bins)]
  return jnp.concatenate(means, axis=axis)


def adaptive_avg_pool(x: jax.Array, bins: IntOrPair) -> jax.Array:
  """Average pooling of x (N, H, W, C) to (N, bins_h, bins_w, C), as PyTorch AdaptiveAvgPool2d.

  Bins may overlap when the size is not a multiple of the bin count. The 2-D bin mean is computed
  as a mean over H followed by a mean over W (the bins are separable rectangles).
  """
  bins_h, bins_w = as_pair(bins, 'bins')
  return _adaptive_mean_axis(_adaptive_mean_axis(x, 1, bins_h), 2, bins_w)
