"""max_pool (PyTorch/Caffe rounding, -inf padding) and adaptive_avg_pool (PyTorch bins)."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn import adaptive_avg_pool, max_pool, pool_output_size
from jaxseg.nn.pool import adaptive_bin_edges

GRID_8X8 = np.arange(64, dtype=np.float32).reshape(8, 8)


def as_nhwc(grid):
  return jnp.asarray(grid)[None, :, :, None]


def test_output_sizes():
  assert pool_output_size(8, 3, 2, 1, ceil_mode=False) == 4
  assert pool_output_size(8, 3, 2, 1, ceil_mode=True) == 5
  assert pool_output_size(161, 3, 2, 1, ceil_mode=True) == 81  # DeepLab v2, 321 input
  assert (pool_output_size(640, 3, 2, 1, True), pool_output_size(360, 3, 2, 1, True)) == (321, 181)
  # ceil(5 / 2) + 1 = 4 windows, but the 4th would start in the bottom padding: dropped.
  assert pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3


@pytest.mark.parametrize('ceil_mode, rows', [(False, [1, 3, 5, 7]), (True, [1, 3, 5, 7, 7])])
def test_max_pool_8x8_increasing(ceil_mode, rows):
  y = max_pool(as_nhwc(GRID_8X8), 3, 2, 1, ceil_mode=ceil_mode)
  rows = np.array(rows)
  np.testing.assert_array_equal(y[0, :, :, 0], GRID_8X8[np.ix_(rows, rows)])


@pytest.mark.parametrize('ceil_mode, rows', [(False, [0, 1, 3, 5]), (True, [0, 1, 3, 5, 7])])
def test_max_pool_pads_with_minus_infinity(ceil_mode, rows):
  # Negative values: a zero padding would win the max on the border windows.
  y = max_pool(as_nhwc(-GRID_8X8 - 1), 3, 2, 1, ceil_mode=ceil_mode)
  rows = np.array(rows)
  np.testing.assert_array_equal(y[0, :, :, 0], -GRID_8X8[np.ix_(rows, rows)] - 1)


def test_max_pool_drops_window_starting_in_padding():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 6, 3)), jnp.float32)
  y = max_pool(x, window=2, stride=2, padding=1, ceil_mode=True)
  chex.assert_shape(y, (2, 3, 4, 3))


def test_max_pool_integer_input_and_gradient():
  y = max_pool(as_nhwc(GRID_8X8).astype(jnp.int32), 3, 2, 1, ceil_mode=True)
  assert y.dtype == jnp.int32
  grad = jax.jit(jax.grad(lambda v: max_pool(v, 3, 2, 1, True).sum()))(as_nhwc(GRID_8X8))
  # Each of the 25 outputs sends its gradient to its (unique) argmax.
  assert float(grad.sum()) == 25.0
  assert float(grad[0, 7, 7, 0]) == 4.0  # argmax of the last row and column windows


def numpy_adaptive_avg_pool(x, bins):
  """x (N, H, W, C); PyTorch AdaptiveAvgPool2d bin edges floor(i*H/b), ceil((i+1)*H/b)."""
  (height, width), (bins_h, bins_w) = x.shape[1:3], bins
  out = np.zeros((x.shape[0], bins_h, bins_w, x.shape[3]))
  for i in range(bins_h):
    h0, h1 = math.floor(i * height / bins_h), math.ceil((i + 1) * height / bins_h)
    for j in range(bins_w):
      w0, w1 = math.floor(j * width / bins_w), math.ceil((j + 1) * width / bins_w)
      out[:, i, j] = x[:, h0:h1, w0:w1].astype(np.float64).mean(axis=(1, 2))
  return out


def test_adaptive_bin_edges():
  assert adaptive_bin_edges(7, 3) == ((0, 3), (2, 5), (4, 7))
  assert adaptive_bin_edges(13, 6) == ((0, 3), (2, 5), (4, 7), (6, 9), (8, 11), (10, 13))
  assert adaptive_bin_edges(6, 2) == ((0, 3), (3, 6))


@pytest.mark.parametrize('size', [7, 13, 12])
@pytest.mark.parametrize('bins', [1, 2, 3, 6, (2, 3)])
def test_adaptive_avg_pool_matches_numpy(size, bins):
  x = np.random.default_rng(size).standard_normal((2, size, size + 1, 3)).astype(np.float32)
  bins_hw = (bins, bins) if isinstance(bins, int) else bins
  y = adaptive_avg_pool(jnp.asarray(x), bins)
  chex.assert_shape(y, (2,) + bins_hw + (3,))
  np.testing.assert_allclose(y, numpy_adaptive_avg_pool(x, bins_hw), rtol=1e-5, atol=1e-6)
