"""Augmentation recipes keep image, label, depth and normals aligned (one random draw).

The test image encodes its own source coordinates (R = 4x, G = 4y), so after any recipe the
bilinear image says where each output pixel came from (to 1/4 px: Pillow truncates to uint8);
nearest-sampled targets must agree.
"""
import ml_collections
import numpy as np
import pytest

from jaxseg.data import recipes, transforms
from jaxseg.data.formats import dsr

H, W = 40, 60
MEAN = (10.0, 20.0, 30.0)
N_SRC = np.array([0.6, 0.8], np.float32)


def _example():
  y, x = np.mgrid[0:H, 0:W]
  normals = np.zeros((H, W, 3), np.float32)
  normals[..., :2] = N_SRC
  return {'image': np.stack([4 * x, 4 * y, np.full_like(x, 128)], -1).astype(np.uint8),
          'label': (x // 6 + 10 * (y // 8)).astype(np.uint8),
          'depth': (x + 1).astype(np.float32), 'normals': normals,
          'valid': np.ones((H, W), bool)}


def _aug(name, **over):
  over = dict(dict(mean=MEAN, std=(1.0, 1.0, 1.0), bgr=False), **over)
  return ml_collections.ConfigDict(recipes.recipe(name, **over))


def _source_coords(out):
  raw = out['image'] + np.asarray(MEAN, np.float32)
  return raw[..., 0] / 4, raw[..., 1] / 4, raw[..., 2]


def _jacobian(xs, ys, inside):
  """d(source x, y) / d(output x, y): a least-squares affine fit over the inside pixels."""
  y, x = np.nonzero(inside)
  design = np.stack([x, y, np.ones_like(x)], 1).astype(np.float64)
  coef, *_ = np.linalg.lstsq(design, np.stack([xs[inside], ys[inside]], 1), rcond=None)
  return coef[:2].T


def check_aligned(out, depth_scaled=False, depth_tol=0.8):
  """Checks targets against the source coordinates read from the image; returns the Jacobian.

  `depth_scaled`: depth must be divided by the geometric scale (PAD-Net zoom)."""
  xs, ys, blue = _source_coords(out)
  inside = out['label'] != 255
  np.testing.assert_array_equal(inside, blue > 64)  # same in/out mask; fill = the mean
  assert inside.mean() > 0.3
  np.testing.assert_array_equal(out['image'][~inside], 0.0)
  assert not out['valid'][~inside].any() and not out['depth'][~inside].any()
  rx, ry = np.floor(xs + 0.5), np.floor(ys + 0.5)
  want = (rx // 6 + 10 * (ry // 8))[inside]
  assert np.mean(out['label'][inside] == want) > 0.93
  j = _jacobian(xs, ys, inside)
  s = 1 / np.sqrt(abs(np.linalg.det(j)))  # geometric scale of the output
  err = np.abs(out['depth'][inside] * (s if depth_scaled else 1.0) - (xs[inside] + 1))
  assert np.mean(err <= depth_tol / min(s, 1.0)) > 0.97, np.percentile(err, 95)
  lin = np.linalg.inv(j)
  lin /= np.sqrt(abs(np.linalg.det(lin)))
  np.testing.assert_allclose(np.median(out['normals'][inside][:, :2], 0), lin @ N_SRC,
                             atol=0.06)
  return j


@pytest.mark.parametrize('name,over', [
    ('deeplabv2', dict(crop_size=(32, 32))),
    ('pspnet', dict(crop_size=(48, 48), blur_prob=0.0)),
    ('adaptsegnet_gta5', dict(resize_to=(30, 45), crop_size=(30, 45), flip=True)),
    ('padnet', dict(crop_size=(H, W))),
    ('dsr', dict(crop_size=(32, 32), dsr_protocol='middlebury')),
])
def test_every_recipe_keeps_targets_aligned(name, over):
  t = recipes.make_train_transform(_aug(name, **over), None)
  flips = set()
  for seed in range(8):
    out = t(_example(), np.random.default_rng(seed))
    assert out['image'].shape[:2] == tuple(over['crop_size']) == out['label'].shape
    assert out['label'].dtype == np.int32 and out['image'].dtype == np.float32
    j = check_aligned(out, depth_scaled=name == 'padnet')
    flips.add(tuple(np.sign(np.round(j, 1)).ravel()))
  assert len(flips) > 1, 'the random geometry should vary over seeds'


def test_pspnet_rotation_nearest_labels_and_ignore_fill():
  aug = _aug('pspnet', scale_range=(1.0, 1.0), rotate=(10.0, 10.0), rotate_prob=1.0,
             blur_prob=0.0, flip=False, crop_size=(H, W))
  out = recipes.make_train_transform(aug, None)(_example(), np.random.default_rng(0))
  assert out['label'][0, 0] == 255 and out['label'][-1, -1] == 255  # corners cut
  assert set(np.unique(out['label'])) <= set(np.unique(_example()['label'])) | {255}
  j = check_aligned(out)
  t = np.deg2rad(10.0)
  np.testing.assert_allclose(np.linalg.inv(j), [[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]],
                             atol=0.02)  # cv2.getRotationMatrix2D(centre, +10, 1)


def test_zoom_divides_depth_and_keeps_normals():
  aug = _aug('padnet', crop_size=(H, W), zoom=(1.5,), flip=False)
  out = recipes.make_train_transform(aug, None)(_example(), np.random.default_rng(0))
  j = check_aligned(out, depth_scaled=True)
  np.testing.assert_allclose(j, np.eye(2) / 1.5, atol=0.01)
  np.testing.assert_array_equal(out['normals'][out['valid']][:, :2], np.tile(N_SRC, (
      out['valid'].sum(), 1)))
  src_x = np.floor((np.arange(W) - W / 2) / 1.5 + W / 2 + 0.5)  # about the centre (W/2, H/2)
  np.testing.assert_allclose(out['depth'], np.tile((src_x + 1) / 1.5, (H, 1)), rtol=1e-6)


def test_dsr_low_resolution_inputs_and_transpose():
  aug = _aug('dsr', crop_size=(32, 32), dsr_scale=8, dsr_protocol='nyu')
  t = recipes.make_train_transform(aug, None)
  transposed = 0
  for seed in range(8):
    out = t(_example(), np.random.default_rng(seed))
    lo, hi = out['minmax']
    assert (lo, hi) == (1.0, W)
    assert out['depth_lr'].shape == (4, 4) and out['depth_lr_up'].shape == (32, 32)
    np.testing.assert_array_equal(out['depth_lr'], dsr.downsample(out['depth'], 8, 'pil'))
    xs, _, _ = _source_coords(out)
    np.testing.assert_allclose(out['depth'] * (hi - lo) + lo, xs + 1, atol=1e-4)
    j = check_aligned(dict(out, depth=out['depth'] * (hi - lo) + lo))
    transposed += abs(j[0, 0]) < 0.5
  assert 0 < transposed < 8


def test_gaussian_blur_is_opencv_sigma0_kernel():
  img = np.zeros((9, 9, 3), np.float32)
  img[4, 4] = 256.0
  out = transforms.gaussian_blur(img, 5)
  k = np.array([1, 4, 6, 4, 1]) / 16
  np.testing.assert_allclose(out[2:7, 2:7, 0], 256 * np.outer(k, k), rtol=1e-6)
  edge = np.zeros((9, 9, 3), np.float32)
  edge[0, 4] = 16.0  # reflect-101: row -1 mirrors row 1, so the edge impulse is not doubled
  assert transforms.gaussian_blur(edge, 5)[0, 4, 0] == pytest.approx(16 * 6 / 16 * 6 / 16)


def test_eval_transforms():
  ex = _example()
  ada = recipes.make_eval_transform(_aug('adaptsegnet_cityscapes', eval_resize_to=(20, 30)),
                                       ('image', 'label'))(ex)
  assert ada['image'].shape == (20, 30, 3) and ada['label'].shape == (H, W)
  d = recipes.make_eval_transform(_aug('dsr', dsr_scale=16), None)(ex)
  assert d['depth'].shape == (32, 48) and d['depth_lr'].shape == (2, 3)
  tof = dict(ex, depth_lr=np.ones((5, 7), np.float32))
  out = recipes.make_eval_transform(_aug('dsr', dsr_scale=16), None)(tof)
  # The dataset's own LR map covers the whole target: nothing is cropped (cropping the target
  # to 32x48 while keeping the whole LR map would misalign the two).
  assert out['depth_lr'].shape == (5, 7) and out['depth'].shape == (H, W)
  assert out['image'].shape[:2] == (H, W)
  z = recipes.make_eval_transform(_aug('padnet', crop_size=(20, 30)), None)(ex)
  assert z['image'].shape == (20, 30, 3) and z['depth'].shape == (20, 30)


@pytest.mark.parametrize('over,field', [
    (dict(recipe='mosaic'), 'recipe'),
    (dict(dsr_scale=3), 'dsr_scale'),
    (dict(crop_size=(30, 30)), 'crop_size'),
    (dict(crop_size=(32, 64)), 'crop_size'),
])
def test_bad_fields_are_named(over, field):
  with pytest.raises(ValueError, match=f'config.dataset.augment.{field}='):
    recipes.make_train_transform(_aug('dsr', **over), None)


def test_missing_batch_key_is_explained():
  t = recipes.make_train_transform(_aug('deeplabv2', crop_size=(8, 8)), ('image', 'depth'))
  with pytest.raises(KeyError, match="needs \\['depth'\\]"):
    t({'image': _example()['image'], 'label': _example()['label']}, np.random.default_rng(0))


@pytest.mark.parametrize('degrees,scale', [(0.0, 1.0), (7.0, 0.8), (-25.0, 1.7)])
def test_pillow_and_numpy_bilinear_agree(degrees, scale):
  """The uint8 fast path (Pillow) samples where the float path does (to uint8 truncation)."""
  img = np.random.default_rng(0).integers(0, 256, (30, 40, 3)).astype(np.uint8)
  a = np.linalg.inv(transforms.rotation_about(20, 15, degrees) @ np.diag([scale, scale, 1]))
  fast = transforms.affine_warp({'image': img}, a, (25, 35), (0, 0, 0))['image']
  slow = transforms.affine_warp({'image': img.astype(np.float32)}, a, (25, 35), (0, 0, 0))
  diff = np.abs(fast - slow['image'])
  assert diff.max() <= 1.0 and diff.mean() < 0.6


def test_dsr_structure_target_is_cropped_and_flipped_with_the_depth():
  """A depth step at column 30: the Canny / Sobel target marks it wherever the crop puts it;
  the 'nyu' min-max ignores invalid pixels (zeros)."""
  ex = _example()
  ex['depth'] = np.where(np.arange(W)[None] < 30, 2.0, 5.0).repeat(H, 0).astype(np.float32)
  ex['valid'] = np.ones((H, W), bool)
  ex['valid'][:, :2] = False
  ex['depth'][:, :2] = 0.0  # missing depth, as Sintel stores it
  for method in ('sobel', 'canny'):
    aug = _aug('dsr', crop_size=(32, 32), dsr_scale=4, dsr_protocol='nyu', structure_gt=method,
               transpose=False, vflip=False)
    t = recipes.make_train_transform(aug, None)
    for seed in range(4):
      out = t(ex, np.random.default_rng(seed))
      assert tuple(out['minmax']) == (2.0, 5.0)  # not 0: the invalid zeros are ignored
      d, s = out['depth'], out['structure']
      step = np.flatnonzero(np.abs(np.diff(d[0])) > 0.5)  # the step between columns j, j + 1
      cols = np.flatnonzero(s.any(0))
      assert len(step) == 1 and set(cols) <= {step[0], step[0] + 1}, (method, step, cols)
      assert s[:, step[0]:step[0] + 2].any(1).all()  # every row has the edge
      assert not s[~out['valid']].any()
