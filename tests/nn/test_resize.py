"""resize_bilinear (PyTorch align_corners semantics) and resize_nearest (PIL NEAREST)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxseg.nn import resize_bilinear, resize_nearest

GRID_2X2 = np.array([[0., 1.], [2., 3.]])
GRID_4X4 = np.arange(16.).reshape(4, 4)


def as_nhwc(grid):
  return jnp.asarray(grid, jnp.float32)[None, :, :, None]


def numpy_bilinear(x, size, align_corners):
  """Per-pixel PyTorch `F.interpolate(mode='bilinear')` formula in float64, x (N, H, W, C)."""
  def source(dst, n_in, n_out):
    if align_corners:
      return dst * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return max((dst + 0.5) * n_in / n_out - 0.5, 0.0)

  n_in_h, n_in_w = x.shape[1:3]
  out = np.zeros((x.shape[0], size[0], size[1], x.shape[3]))
  for i in range(size[0]):
    sy = source(i, n_in_h, size[0])
    y0 = int(sy)
    y1, wy = min(y0 + 1, n_in_h - 1), sy - y0
    for j in range(size[1]):
      sx = source(j, n_in_w, size[1])
      x0 = int(sx)
      x1, wx = min(x0 + 1, n_in_w - 1), sx - x0
      out[:, i, j] = ((1 - wy) * ((1 - wx) * x[:, y0, x0] + wx * x[:, y0, x1])
                      + wy * ((1 - wx) * x[:, y1, x0] + wx * x[:, y1, x1]))
  return out


@pytest.mark.parametrize('align_corners, size, expected', [
    (True, (3, 3), [[0, .5, 1], [1, 1.5, 2], [2, 2.5, 3]]),
    (False, (4, 4), [[0, .25, .75, 1], [.5, .75, 1.25, 1.5],
                     [1.5, 1.75, 2.25, 2.5], [2, 2.25, 2.75, 3]]),
    (True, (4, 4), [[0, 1 / 3, 2 / 3, 1], [2 / 3, 1, 4 / 3, 5 / 3],
                    [4 / 3, 5 / 3, 2, 7 / 3], [2, 7 / 3, 8 / 3, 3]]),
    (False, (3, 3), [[0, .5, 1], [1, 1.5, 2], [2, 2.5, 3]]),
])
def test_upsample_2x2_hand_computed(align_corners, size, expected):
  y = resize_bilinear(as_nhwc(GRID_2X2), size, align_corners)
  np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('align_corners, expected', [
    (False, [[2.5, 4.5], [10.5, 12.5]]),  # src = 0.5, 2.5: averages of 2x2 blocks
    (True, [[0, 3], [12, 15]]),           # src = 0, 3: the corners
])
def test_downsample_4x4_hand_computed(align_corners, expected):
  y = resize_bilinear(as_nhwc(GRID_4X4), (2, 2), align_corners)
  np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-6)


@pytest.mark.parametrize('align_corners', [True, False])
def test_identity_when_sizes_match(align_corners):
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 6, 3)), jnp.float32)
  chex.assert_trees_all_equal(resize_bilinear(x, (5, 6), align_corners), x)


@pytest.mark.parametrize('align_corners', [True, False])
@pytest.mark.parametrize('size', [(7, 3), (2, 9), (1, 1), (13, 11)])
def test_matches_pytorch_formula(align_corners, size):
  x = np.random.default_rng(1).standard_normal((2, 5, 6, 3)).astype(np.float32)
  y = jax.jit(resize_bilinear, static_argnums=(1, 2))(jnp.asarray(x), size, align_corners)
  chex.assert_shape(y, (2,) + size + (3,))
  np.testing.assert_allclose(y, numpy_bilinear(x, size, align_corners), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('align_corners', [True, False])
def test_bilinear_is_differentiable(align_corners):
  x = jnp.asarray(np.random.default_rng(2).standard_normal((1, 3, 4, 2)), jnp.float32)
  check_grads(jax.jit(lambda v: resize_bilinear(v, (5, 3), align_corners)), (x,), order=1,
              modes=['rev'], atol=1e-2, rtol=1e-2)
  grad = jax.jit(jax.grad(lambda v: resize_bilinear(v, (5, 7), align_corners).sum()))(x)
  # Each output's weights sum to one, so the gradients of all inputs sum to the output count.
  np.testing.assert_allclose(grad.sum(), 5 * 7 * 2, rtol=1e-5)


def test_bilinear_bfloat16_keeps_dtype():
  y = resize_bilinear(as_nhwc(GRID_2X2).astype(jnp.bfloat16), (3, 3), True)
  assert y.dtype == jnp.bfloat16


def test_nearest_hand_computed_pattern():
  # 4 -> 3: floor((d + .5) * 4 / 3) = 0, 2, 3; 3 -> 5: floor((d + .5) * .6) = 0, 0, 1, 2, 2
  labels = (np.arange(4)[:, None] * 10 + np.arange(3)[None, :]).astype(np.int32)[None]
  y = resize_nearest(jnp.asarray(labels), (3, 5))
  assert y.dtype == jnp.int32
  rows, cols = [0, 2, 3], [0, 0, 1, 2, 2]
  np.testing.assert_array_equal(y[0], labels[0][np.ix_(rows, cols)])
  nhwc = resize_nearest(jnp.asarray(labels)[..., None].repeat(2, -1), (3, 5))
  np.testing.assert_array_equal(nhwc[..., 1], y)


@pytest.mark.parametrize('size', [(7, 3), (2, 9), (12, 10), (5, 8), (1, 1), (17, 23)])
def test_nearest_matches_pil(size):
  image_module = pytest.importorskip('PIL.Image')
  labels = np.random.default_rng(3).integers(0, 255, (5, 8), dtype=np.uint8)
  expected = np.asarray(image_module.fromarray(labels).resize(size[::-1],
                                                              image_module.Resampling.NEAREST))
  y = jax.jit(resize_nearest, static_argnums=1)(jnp.asarray(labels)[None], size)
  np.testing.assert_array_equal(y[0], expected)
