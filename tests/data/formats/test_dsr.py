"""Bicubic depth down-sampling for depth super-resolution (PIL and OpenCV conventions)."""

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.formats import dsr


@pytest.fixture
def depth():
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[0:480, 0:640]
  return (2.0 + 0.004 * xx + 0.002 * yy + 0.1 * rng.normal(size=(480, 640))).astype(np.float32)


@pytest.mark.parametrize('scale', [4, 8, 16])
@pytest.mark.parametrize('method', ['pil', 'cv2'])
def test_shapes(depth, scale, method):
  lr = dsr.downsample(depth, scale, method)
  assert lr.shape == (480 // scale, 640 // scale) and lr.dtype == np.float32
  up = dsr.upsample(lr, scale, method)
  assert up.shape == depth.shape


@pytest.mark.parametrize('scale', [4, 8, 16])
def test_pil_is_pillow_bicubic_on_float_images(depth, scale):
  ref = Image.fromarray(depth).resize((640 // scale, 480 // scale), Image.BICUBIC)
  assert ref.mode == 'F'
  np.testing.assert_array_equal(dsr.downsample(depth, scale, 'pil'), np.asarray(ref))


def test_cv2_convention_by_hand():
  # x4, a = -0.75: output j samples source 4j + 1.5 with taps 4j .. 4j+3 and weights
  # k(1.5), k(0.5), k(0.5), k(1.5) = -0.09375, 0.59375, 0.59375, -0.09375.
  x = np.random.default_rng(1).uniform(0, 255, (1, 16)).repeat(4, axis=0)
  w = np.array([-0.09375, 0.59375, 0.59375, -0.09375])
  expected = x[0].reshape(4, 4) @ w
  np.testing.assert_allclose(dsr.downsample(x, 4, 'cv2')[0], expected, rtol=1e-6)
  # Constants are preserved; borders replicate (no darkening at the edge).
  np.testing.assert_allclose(dsr.downsample(np.full((16, 32), 7.0), 8, 'cv2'), 7.0, rtol=1e-6)
  np.testing.assert_allclose(dsr.upsample(np.full((4, 4), 3.0), 4, 'cv2'), 3.0, rtol=1e-6)


def test_cv2_and_pil_differ(depth):
  a = dsr.downsample(depth, 4, 'pil')
  b = dsr.downsample(depth, 4, 'cv2')
  assert np.abs(a - b).max() > 1e-3   # the two protocols are not interchangeable


def test_matches_opencv_when_installed(depth):
  cv2 = pytest.importorskip('cv2')
  for scale in (4, 8, 16):
    ref = cv2.resize(depth, (640 // scale, 480 // scale), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(dsr.downsample(depth, scale, 'cv2'), ref, atol=1e-4)


def test_modcrop_and_errors():
  x = np.zeros((1110, 1390))
  assert dsr.modcrop(x, 16).shape == (1104, 1376)
  with pytest.raises(ValueError, match='multiple'):
    dsr.downsample(x, 16)
  with pytest.raises(ValueError):
    dsr.downsample(np.zeros((16, 16)), 4, 'matlab')
  with pytest.raises(ValueError):
    dsr.make_lr(np.zeros((16, 16)), 4, 'kitti')


def test_make_lr_protocols(depth):
  out = dsr.make_lr(depth, 8, 'nyu')
  lo, hi = out['minmax']
  assert lo == pytest.approx(depth.min()) and hi == pytest.approx(depth.max())
  assert out['hr'].min() == 0 and out['hr'].max() == pytest.approx(1)
  np.testing.assert_array_equal(out['lr'], dsr.downsample(out['hr'], 8, 'pil'))
  assert out['lr_up'].shape == depth.shape
  mid = dsr.make_lr(depth * 30, 4, 'middlebury')
  assert 'minmax' not in mid
  np.testing.assert_array_equal(mid['lr'], dsr.downsample(depth * 30, 4, 'cv2'))


def test_minmax_normalize_ignores_invalid_pixels():
  d = np.array([[0.0, 2.0], [4.0, 3.0]], np.float32)
  out, (lo, hi) = dsr.minmax_normalize(d, d > 0)
  assert (lo, hi) == (2.0, 4.0)
  np.testing.assert_allclose(out, [[0.0, 0.0], [1.0, 0.5]])
  nan = np.array([[np.nan, 1.0], [3.0, 2.0]], np.float32)
  assert dsr.minmax_normalize(nan)[1] == (1.0, 3.0)
  assert dsr.minmax_normalize(d, np.zeros((2, 2), bool))[1] == (0.0, 1.0)
