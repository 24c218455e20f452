"""resize_bilinear (PyTorch align_corners semantics) and resize_nearest (PIL NEAREST)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxseg.nn import resize_bilinear, resize_nearest
from jaxseg.nn.resize import (RESIZE_RULES, caffe_interp_factors, resize_by_scale,
                              rule_align_corners, scaled_size)

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


# -- resize_by_scale: the reference codebases' rules ----------------------------------------------
ODD_SHAPES = [(321, 97), (513, 7)]  # (H, W): s * H is not whole for the scales below
SCALES = [0.5, 0.75, 1.25, 1.75]


def numpy_rule_matrix(n_in, scale, rule):
  """(n_out, n_in) float64 interpolation matrix of one axis from each rule's sampling formula."""
  if rule == 'caffe_interp':  # shrink q, then zoom p; corners aligned: src = dst (in-1)/(out-1)
    p, q = {0.5: (1, 2), 0.75: (3, 4), 1.25: (5, 4), 1.75: (7, 4)}[scale]
    n_out = p * ((n_in - 1) // q) + 1
    src = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
  else:
    n_out = int(np.floor(n_in * scale))
    ratio = 1 / scale if rule == 'pytorch_scale_factor' else n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * ratio - 0.5, 0)
  lower = np.minimum(np.floor(src).astype(int), n_in - 1)
  upper = np.minimum(lower + 1, n_in - 1)
  m = np.zeros((n_out, n_in))
  np.add.at(m, (np.arange(n_out), lower), 1 - (src - lower))
  np.add.at(m, (np.arange(n_out), upper), src - lower)
  return m


def numpy_by_scale(x, scale, rule):
  mh = numpy_rule_matrix(x.shape[1], scale, rule)
  mw = numpy_rule_matrix(x.shape[2], scale, rule)
  y = np.einsum('ph,nhwc->npwc', mh, x.astype(np.float64))
  return np.einsum('npwc,qw->npqc', y, mw)


@pytest.fixture(scope='module')
def odd_images():
  rng = np.random.default_rng(5)
  return {hw: rng.standard_normal((1,) + hw + (2,)).astype(np.float32) for hw in ODD_SHAPES}


def by_scale(x, scale, rule, align_corners=None):
  return np.asarray(jax.jit(resize_by_scale, static_argnums=(1, 2, 3))(
      jnp.asarray(x), scale, rule, align_corners))


@pytest.mark.parametrize('rule', RESIZE_RULES)
@pytest.mark.parametrize('scale', SCALES)
@pytest.mark.parametrize('hw', ODD_SHAPES)
def test_by_scale_matches_numpy_formula(odd_images, hw, scale, rule):
  x = odd_images[hw]
  want = numpy_by_scale(x, scale, rule)
  got = by_scale(x, scale, rule)
  chex.assert_shape(got, want.shape)
  # float32 source positions (as in the references) vs float64 ones: up to 1 ulp of 512 (6e-5)
  # in a weight, times neighbour differences of up to ~6; the rules differ by > 0.1 here.
  np.testing.assert_allclose(got, want, rtol=0, atol=5e-4)


def test_scaled_sizes_of_each_rule():
  for rule in ('pytorch_scale_factor', 'size'):
    assert [scaled_size(n, s, rule) for n in (321, 513) for s in (0.5, 0.75)] == \
        [160, 240, 256, 384]
  assert [scaled_size(n, s, 'caffe_interp') for n in (321, 513) for s in (0.5, 0.75)] == \
      [161, 241, 257, 385]
  assert scaled_size(97, 1.75, 'caffe_interp') == 7 * 24 + 1
  assert caffe_interp_factors(0.75) == (3, 4) and caffe_interp_factors(2.0) == (2, 1)
  with pytest.raises(ValueError, match='p/q'):
    caffe_interp_factors(2 ** -0.5)
  with pytest.raises(ValueError, match='unknown resize rule'):
    scaled_size(10, 0.5, 'cv2')


def test_pytorch_scale_factor_halves_by_averaging_pairs(odd_images):
  """ratio exactly 2 at s = 0.5: output d is the mean of inputs 2d, 2d + 1 (321 -> 160), where
  the size rule's ratio 321 / 160 = 2.00625 drifts by up to 0.5 pixel at the far edge."""
  x = odd_images[(321, 97)]
  got = by_scale(x, 0.5, 'pytorch_scale_factor')
  pairs = x[:, :320].reshape(1, 160, 2, 97, 2).mean(axis=2)
  pairs = pairs[:, :, :96].reshape(1, 160, 48, 2, 2).mean(axis=3)
  np.testing.assert_allclose(got, pairs, atol=1e-6)
  assert np.abs(by_scale(x, 0.5, 'size') - pairs).max() > 0.1


def test_caffe_interp_shrink_takes_every_other_pixel(odd_images):
  """Interp shrink_factor 2 on an odd size samples exactly at 0, 2, ..., H - 1 (aligned corners)."""
  x = odd_images[(321, 97)]
  np.testing.assert_allclose(by_scale(x, 0.5, 'caffe_interp'), x[:, ::2, ::2], atol=1e-6)
  # 0.75 = shrink 4, zoom 3: 9 -> 7 samples at dst * 8 / 6, hand-computed on a ramp.
  ramp = np.arange(9, dtype=np.float32)[None, :, None, None] * np.ones((1, 1, 9, 1), np.float32)
  got = by_scale(ramp, 0.75, 'caffe_interp')[0, :, 0, 0]
  np.testing.assert_allclose(got, [0, 4 / 3, 8 / 3, 4, 16 / 3, 20 / 3, 8], atol=1e-6)


def test_rule_corner_conventions(odd_images):
  assert rule_align_corners('pytorch_scale_factor') is False
  assert rule_align_corners('size', True) is True and rule_align_corners('caffe_interp') is True
  with pytest.raises(ValueError, match='always aligns corners'):
    rule_align_corners('caffe_interp', False)
  x = odd_images[(513, 7)]
  for rule in RESIZE_RULES:  # 1.0 is the identity under every rule
    chex.assert_trees_all_equal(by_scale(x, 1.0, rule), x)
  # With aligned corners the scale factor does not move the samples: pytorch == size.
  np.testing.assert_array_equal(by_scale(x, 0.75, 'pytorch_scale_factor', True),
                                by_scale(x, 0.75, 'size', True))


def test_scale_factor_with_unchanged_size_still_resamples():
  """3 px at s = 1.2 stays 3 px, but PyTorch samples at (d + 0.5) / 1.2 - 0.5 = 0, 0.75, 1.58."""
  x = as_nhwc(np.array([[0.0, 1.0, 2.0]]).T)
  got = by_scale(x, 1.2, 'pytorch_scale_factor')[0, :, 0, 0]
  np.testing.assert_allclose(got, [0, 0.75, 2.5 / 1.2 - 0.5], atol=1e-6)
  chex.assert_trees_all_equal(by_scale(x, 1.2, 'size'), x)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('hw', ODD_SHAPES + [(97, 97)])
def test_by_scale_matches_pytorch_interpolate(odd_images, hw, align_corners):
  torch = pytest.importorskip('torch', reason='compares with torch.nn.functional.interpolate')
  rng = np.random.default_rng(6)
  x = odd_images.get(hw)
  x = x if x is not None else rng.standard_normal((1,) + hw + (2,)).astype(np.float32)
  tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  for scale in SCALES:
    want = torch.nn.functional.interpolate(tx, scale_factor=scale, mode='bilinear',
                                           align_corners=align_corners)
    want = want.numpy().transpose(0, 2, 3, 1)
    got = by_scale(x, scale, 'pytorch_scale_factor', align_corners)
    chex.assert_shape(got, want.shape)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f'scale {scale}')
    # The size rule equals F.interpolate(size=...), not scale_factor (unless corners align).
    size_want = torch.nn.functional.interpolate(tx, size=want.shape[1:3], mode='bilinear',
                                                align_corners=align_corners)
    np.testing.assert_allclose(by_scale(x, scale, 'size', align_corners),
                               size_want.numpy().transpose(0, 2, 3, 1), rtol=0, atol=1e-6)
    if not align_corners:
      assert np.abs(by_scale(x, scale, 'size') - want).max() > 1e-2
