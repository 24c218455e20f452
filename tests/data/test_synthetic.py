"""Tests for jaxseg.data.synthetic (procedural indoor scenes)."""

import numpy as np
import pytest

from jaxseg.data import synthetic as S

KEYS = ('image', 'depth', 'label', 'normals', 'contours', 'valid')


@pytest.fixture(scope='module')
def scenes():
  """A few (seed 0) examples at 65 x 97 in the source domain."""
  return [S.render_scene(0, i, 65, 97) for i in range(6)]


def _pixel_rays(height, width):
  """Camera-frame rays (H, W, 3) through pixel centres with z = 1, from the public intrinsics."""
  k = S.camera_intrinsics(height, width)
  jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
  uv1 = np.stack([jj, ii, np.ones_like(ii)], axis=-1)
  return uv1 @ np.linalg.inv(k).T


def test_deterministic_and_index_dependent():
  a = S.render_scene(3, 7, 40, 56, 'target')
  b = S.render_scene(3, 7, 40, 56, 'target')
  for key in KEYS:
    np.testing.assert_array_equal(a[key], b[key])
  c = S.render_scene(3, 8, 40, 56, 'target')
  assert not np.array_equal(a['image'], c['image'])
  assert not np.array_equal(a['depth'], c['depth'])
  d = S.render_scene(4, 7, 40, 56, 'target')
  assert not np.array_equal(a['depth'], d['depth'])


@pytest.mark.parametrize('height,width', [(33, 47), (129, 129)])
def test_shapes_dtypes_ranges(height, width):
  ex = S.render_scene(0, 1, height, width)
  assert set(ex) == set(KEYS)
  assert ex['image'].shape == (height, width, 3) and ex['image'].dtype == np.uint8
  assert ex['depth'].shape == (height, width) and ex['depth'].dtype == np.float32
  assert ex['label'].shape == (height, width) and ex['label'].dtype == np.uint8
  assert ex['normals'].shape == (height, width, 3) and ex['normals'].dtype == np.float32
  assert ex['contours'].shape == (height, width) and ex['contours'].dtype == np.uint8
  assert ex['valid'].shape == (height, width) and ex['valid'].dtype == bool
  assert set(np.unique(ex['contours'])) <= {0, 1}
  assert ex['image'].std() > 5  # not a blank image
  for key in ('depth', 'normals'):
    assert np.isfinite(ex[key]).all()


def test_depth_valid_and_in_range(scenes):
  lo, hi = S.DEPTH_RANGE
  for ex in scenes:
    d, v = ex['depth'], ex['valid']
    assert v.mean() > 0.9
    assert (d[v] >= lo).all() and (d[v] <= hi).all()
    assert (d[~v] == 0).all()


def test_labels_in_class_list_and_ignore_only_where_invalid(scenes):
  for ex in scenes:
    lab = ex['label']
    known = lab < S.NUM_CLASSES
    assert np.all(known | (lab == S.IGNORE_LABEL))
    assert not ex['valid'][lab == S.IGNORE_LABEL].any()
    assert (ex['depth'][lab == S.IGNORE_LABEL] == 0).all()


def test_every_class_appears_across_twenty_scenes():
  seen = set()
  for i in range(20):
    seen |= set(np.unique(S.render_scene(0, i, 48, 48)['label']).tolist())
  assert set(range(S.NUM_CLASSES)) <= seen
  assert len(S.CLASS_NAMES) == S.NUM_CLASSES <= 10
  assert S.PALETTE.shape == (S.NUM_CLASSES, 3) and S.PALETTE.dtype == np.uint8


def test_normals_unit_facing_camera_and_floor_up(scenes):
  rays = _pixel_rays(65, 97)
  floor_pixels = 0
  for ex in scenes:
    n, v = ex['normals'], ex['valid']
    np.testing.assert_allclose(np.linalg.norm(n[v], axis=-1), 1.0, atol=1e-4)
    assert (n[~v] == 0).all()
    assert (np.sum(n * rays, axis=-1)[v] < 1e-6).all()  # oriented towards the camera
    floor = (ex['label'] == S.FLOOR) & v
    floor_pixels += floor.sum()
    assert (n[floor][:, 1] < -0.85).all()  # up = -y in the camera frame (y down)
    ceiling = (ex['label'] == S.CEILING) & v
    assert (n[ceiling][:, 1] > 0.85).all()
  assert floor_pixels > 0


def test_contours_match_label_boundaries(scenes):
  for ex in scenes:
    lab = ex['label'].astype(np.int32)
    p = np.pad(lab, 1, mode='edge')
    centre = p[1:-1, 1:-1]
    diff = ((p[:-2, 1:-1] != centre) | (p[2:, 1:-1] != centre)
            | (p[1:-1, :-2] != centre) | (p[1:-1, 2:] != centre))
    np.testing.assert_array_equal(ex['contours'], diff.astype(np.uint8))
    assert 0 < ex['contours'].mean() < 0.3


def test_domains_share_geometry_but_not_appearance():
  src = S.render_scene(5, 2, 64, 80, 'source')
  tgt = S.render_scene(5, 2, 64, 80, 'target')
  for key in ('depth', 'label', 'normals', 'contours', 'valid'):
    np.testing.assert_array_equal(src[key], tgt[key])
  assert np.abs(src['image'].astype(int) - tgt['image'].astype(int)).mean() > 5


def test_geometry_independent_of_resolution():
  # Pixel (3i + 1, 3j + 1) of a 3x render has the same centre ray as pixel (i, j).
  lo = S.render_scene(0, 4, 43, 57)
  hi = S.render_scene(0, 4, 129, 171)
  agree = (hi['label'][1::3, 1::3] == lo['label']).mean()
  assert agree > 0.99
  both = lo['valid'] & hi['valid'][1::3, 1::3]
  np.testing.assert_allclose(hi['depth'][1::3, 1::3][both], lo['depth'][both], rtol=1e-4)
  # Plain 2x downsampling (centres a quarter pixel apart) still mostly agrees.
  hi2 = S.render_scene(0, 4, 86, 114)
  assert (hi2['label'][::2, ::2] == lo['label']).mean() > 0.9


def test_floor_and_back_wall_depth_match_ray_plane_intersection():
  seed, index, height, width = 1, 3, 60, 80
  ex = S.render_scene(seed, index, height, width)
  scene = S.sample_scene(seed, index)
  rot, pos = scene.camera.rotation, scene.camera.position
  rays_world = _pixel_rays(height, width) @ rot.T  # R @ ray for every pixel
  floor = (ex['label'] == S.FLOOR) & ex['valid']
  assert floor.sum() > 50
  t_floor = -pos[2] / rays_world[..., 2]  # plane Z = 0; camera-z of the ray is 1, so t = depth
  np.testing.assert_allclose(ex['depth'][floor], t_floor[floor], rtol=1e-4)
  back = (ex['label'] == S.WALL) & ex['valid'] & (ex['normals'][..., 2] < -0.8)
  t_back = (scene.room[1] - pos[1]) / rays_world[..., 1]  # plane Y = room depth
  on_back = back & np.isclose(ex['depth'], t_back, rtol=1e-4)
  assert on_back.sum() > 0.5 * back.sum() > 0


def test_dataset_random_access_and_meta():
  ds = S.SyntheticScenes(seed=2, num_examples=5, height=32, width=40, domain='target')
  assert len(ds) == 5
  ex = ds[3]
  np.testing.assert_array_equal(ex['image'], S.render_scene(2, 3, 32, 40, 'target')['image'])
  np.testing.assert_array_equal(ds[-1]['label'], ds[4]['label'])
  with pytest.raises(IndexError):
    ds[5]
  meta = ds.meta
  assert meta['class_names'] == S.CLASS_NAMES
  assert meta['num_classes'] == len(S.CLASS_NAMES)
  assert meta['ignore_label'] == 255
  assert meta['palette'].shape == (meta['num_classes'], 3)
  assert meta['depth_range'] == S.DEPTH_RANGE
  assert isinstance(meta['name'], str)


@pytest.mark.parametrize('kwargs,match', [
    (dict(domain='night'), 'domain'),
    (dict(height=0), 'positive'),
    (dict(width=-3), 'positive'),
    (dict(seed=-1), 'non-negative'),
    (dict(index=-1), 'non-negative'),
])
def test_argument_validation(kwargs, match):
  args = dict(seed=0, index=0, height=16, width=16, domain='source')
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    S.render_scene(**args)


def test_dataset_argument_validation():
  with pytest.raises(ValueError, match='domain'):
    S.SyntheticScenes(0, 10, 16, 16, domain='real')
  with pytest.raises(ValueError, match='num_examples'):
    S.SyntheticScenes(0, 0, 16, 16)
  with pytest.raises(ValueError, match='positive'):
    S.SyntheticScenes(0, 10, 0, 16)
