"""NYU Depth v2 labelled-set reader on format-exact v7.3 / v5 .mat fixtures and real files."""

import warnings

import numpy as np
import pytest
import scipy.io
from PIL import Image

from jaxseg.data.formats import nyuv2

from ._util import layout_error

hdf5storage = pytest.importorskip('hdf5storage')

NAMES40 = ['wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window',
           'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves', 'curtain', 'dresser',
           'pillow', 'mirror', 'floor mat', 'clothes', 'ceiling', 'books', 'refridgerator',
           'television', 'paper', 'towel', 'shower curtain', 'box', 'whiteboard', 'person',
           'night stand', 'toilet', 'sink', 'lamp', 'bathtub', 'bag', 'otherstructure',
           'otherfurniture', 'otherprop']


def _savemat73(path, variables):
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    hdf5storage.savemat(str(path), variables, format='7.3', matlab_compatible=True,
                        truncate_existing=True)


def _write_nyu(root, n=6, h=24, w=40, labels=True, images=None, depths=None):
  """Writes the four NYU files in MATLAB layout; returns the arrays (natural layout)."""
  root.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  imgs = images if images is not None else rng.integers(0, 256, (h, w, 3, n)).astype(np.uint8)
  h, w, _, n = imgs.shape
  dep = depths if depths is not None else rng.uniform(0.5, 9.5, (h, w, n)).astype(np.float32)
  variables = {'images': imgs, 'depths': dep}
  lab = None
  if labels:
    lab = rng.permutation(np.resize(np.arange(895), h * w * n)).reshape(h, w, n)
    lab = lab.astype(np.uint16)
    variables['labels'] = lab
  _savemat73(root / 'nyu_depth_v2_labeled.mat', variables)
  # splits.mat: 1-based (k, 1) uint16 columns, as published.
  test = np.array([1, 2] + list(range(5, n + 1, 2)))
  train = np.setdiff1d(np.arange(1, n + 1), test)
  scipy.io.savemat(root / 'splits.mat', {'trainNdxs': train.astype(np.uint16)[:, None],
                                         'testNdxs': test.astype(np.uint16)[:, None]})
  map_class = rng.integers(1, 41, (1, 894)).astype(np.uint8)
  map_class[0, :40] = np.arange(1, 41)
  names = np.empty((1, 40), dtype=object)
  for k, s in enumerate(NAMES40):
    names[0, k] = s
  scipy.io.savemat(root / 'classMapping40.mat', {'mapClass': map_class, 'className': names})
  labels13 = rng.integers(1, 14, (1, 40)).astype(np.uint8)
  scipy.io.savemat(root / 'class13Mapping.mat', {'classMapping13': {
      'labels13': labels13, 'classNames': np.array(list('abcdefghijklm'), dtype=object)}})
  return {'images': imgs, 'depths': dep, 'labels': lab, 'train': train, 'test': test,
          'map_class': map_class.ravel().astype(int), 'labels13': labels13.ravel().astype(int)}


@pytest.fixture(scope='module')
def nyu(tmp_path_factory):
  root = tmp_path_factory.mktemp('nyu')
  return root, _write_nyu(root)


def _expected_label(raw, map_class, labels13=None):
  out = np.full(raw.shape, 255, np.uint8)
  on = raw > 0
  lab40 = map_class[raw[on] - 1]
  out[on] = (labels13[lab40 - 1] if labels13 is not None else lab40) - 1
  return out


def test_axis_order_units_and_40_classes(nyu):
  root, ref = nyu
  entries = nyuv2.list_examples(root, 'all')
  assert [e['index'] for e in entries] == list(range(6))
  assert entries[0]['id'] == '0001'
  for e in entries:
    i = e['index']
    ex = nyuv2.read_example(e)
    assert ex['image'].shape == (24, 40, 3) and ex['image'].dtype == np.uint8
    np.testing.assert_array_equal(ex['image'], ref['images'][..., i])
    assert ex['depth'].dtype == np.float32
    np.testing.assert_array_equal(ex['depth'], ref['depths'][..., i])   # metres, unchanged
    assert ex['valid'].all()
    np.testing.assert_array_equal(
        ex['label'], _expected_label(ref['labels'][..., i].astype(int), ref['map_class']))
    assert ex['normals'].shape == (24, 40, 3) and ex['contours'].shape == (24, 40)
    np.testing.assert_array_equal(ex['contours'], nyuv2.contours_from_labels(ex['label']))


def test_every_raw_label_maps(nyu):
  root, ref = nyu
  m40, names = nyuv2.read_class_mapping40(root / 'classMapping40.mat')
  assert names == tuple(NAMES40)
  lut = nyuv2.label_lut(m40)
  assert lut[0] == 255
  for raw in range(1, 895):
    assert lut[raw] == ref['map_class'][raw - 1] - 1
  lut13 = nyuv2.label_lut(m40, nyuv2.read_class_mapping13(root / 'class13Mapping.mat'))
  for raw in range(1, 895):
    assert lut13[raw] == ref['labels13'][ref['map_class'][raw - 1] - 1] - 1
  assert set(np.unique(lut13)) <= set(range(13)) | {255}


def test_13_classes(nyu):
  root, ref = nyu
  e = nyuv2.list_examples(root, 'train', num_classes=13)[0]
  ex = nyuv2.read_example(e)
  raw = ref['labels'][..., e['index']].astype(int)
  np.testing.assert_array_equal(ex['label'],
                                _expected_label(raw, ref['map_class'], ref['labels13']))


def test_official_splits_are_one_based(nyu):
  root, ref = nyu
  train = nyuv2.list_examples(root, 'train')
  test = nyuv2.list_examples(root, 'test')
  assert [e['index'] + 1 for e in train] == list(ref['train'])
  assert [e['index'] + 1 for e in test] == list(ref['test'])
  assert [e['id'] for e in test][:2] == ['0001', '0002']


def test_no_labels_needs_no_mapping(tmp_path):
  root = tmp_path / 'nyu'
  _write_nyu(root, n=2, labels=False)
  (root / 'classMapping40.mat').unlink()
  (e,) = nyuv2.list_examples(root, 'all', num_classes=None)[:1]
  assert set(nyuv2.read_example(e)) == {'image', 'depth', 'valid', 'normals'}


def test_dsr_split_first_1000_last_449(tmp_path):
  root = tmp_path / 'nyu'
  rng = np.random.default_rng(0)
  _write_nyu(root, labels=False,
             images=rng.integers(0, 256, (2, 3, 3, 1449)).astype(np.uint8),
             depths=rng.uniform(1, 2, (2, 3, 1449)).astype(np.float32))
  tr = nyuv2.list_examples(root, 'dsr_train', num_classes=None)
  te = nyuv2.list_examples(root, 'dsr_test', num_classes=None)
  assert [e['index'] for e in tr] == list(range(1000))
  assert [e['index'] for e in te] == list(range(1000, 1449))
  assert te[0]['id'] == '1001' and te[-1]['id'] == '1449'


def test_dsr_split_needs_all_frames(nyu):
  root, _ = nyu
  with layout_error('1449'):
    nyuv2.list_examples(root, 'dsr_train')


def test_invalid_depth(tmp_path):
  root = tmp_path / 'nyu'
  dep = np.full((8, 10, 1), 3.0, np.float32)
  dep[4, 5, 0] = 0.0
  dep[0, 0, 0] = np.nan
  _write_nyu(root, n=1, labels=False, depths=dep,
             images=np.zeros((8, 10, 3, 1), np.uint8))
  (e,) = nyuv2.list_examples(root, 'all', num_classes=None)
  ex = nyuv2.read_example(e)
  assert not ex['valid'][4, 5] and not ex['valid'][0, 0] and ex['valid'].sum() == 78
  assert ex['depth'][4, 5] == 0 and ex['depth'][0, 0] == 0
  for y, x in [(4, 5), (3, 5), (5, 5), (4, 4), (4, 6), (0, 0), (0, 1), (1, 0)]:
    assert (ex['normals'][y, x] == 0).all(), (y, x)
  np.testing.assert_allclose(ex['normals'][6, 2], [0, 0, -1], atol=1e-6)


# ------------------------------------------------------------------------------ derived targets


def _plane_depth(n0, offset, h, w, k):
  u = np.arange(1, w + 1)[None, :]
  v = np.arange(1, h + 1)[:, None]
  ray_dot = n0[0] * (u - k['cx']) / k['fx'] + n0[1] * (v - k['cy']) / k['fy'] + n0[2]
  return offset / ray_dot


@pytest.mark.parametrize('n0', [(0.0, 0.0, -1.0), (0.3, -0.2, -1.0), (-0.5, 0.4, -0.6),
                                (0.0, 0.9, -0.3)])
def test_normals_of_a_plane_are_exact(n0):
  n0 = np.array(n0) / np.linalg.norm(n0)
  depth = _plane_depth(n0, -2.0, 48, 64, nyuv2.NYU_INTRINSICS)   # n0 . P = -2: faces camera
  assert (depth > 0).all()
  normals, valid = nyuv2.normals_from_depth(depth, nyuv2.NYU_INTRINSICS)
  assert valid.all() and normals.dtype == np.float32
  np.testing.assert_allclose(normals, np.broadcast_to(n0, normals.shape), atol=1e-5)


def test_normals_orientation_and_custom_intrinsics():
  k = {'fx': 100.0, 'fy': 100.0, 'cx': 5.0, 'cy': 5.0}
  n0 = np.array([0.6, 0.0, -0.8])
  normals, valid = nyuv2.normals_from_depth(_plane_depth(n0, -1.0, 10, 10, k), k)
  np.testing.assert_allclose(normals[valid], np.broadcast_to(n0, normals[valid].shape),
                             atol=1e-6)


def test_contours_four_neighbour():
  lab = np.array([[0, 0, 1, 1],
                  [0, 0, 1, 1],
                  [2, 2, 2, 255]], np.uint8)
  np.testing.assert_array_equal(nyuv2.contours_from_labels(lab),
                                [[0, 1, 1, 0],
                                 [1, 1, 1, 1],
                                 [1, 1, 1, 1]])
  assert nyuv2.contours_from_labels(np.zeros((3, 3), np.uint8)).sum() == 0


# ------------------------------------------------------------------------------ bad inputs


def test_missing_files(tmp_path):
  root = tmp_path / 'nyu'
  with layout_error('nyu'):
    nyuv2.list_examples(root, 'train')
  _write_nyu(root, n=3, h=4, w=5)
  (root / 'splits.mat').unlink()
  with layout_error('splits.mat'):
    nyuv2.list_examples(root, 'train')
  (root / 'class13Mapping.mat').unlink()
  with layout_error('class13Mapping.mat'):
    nyuv2.list_examples(root, 'all', num_classes=13)
  (root / 'nyu_depth_v2_labeled.mat').unlink()
  with layout_error('nyu_depth_v2_labeled.mat'):
    nyuv2.list_examples(root, 'all')


def test_wrong_mat_variables(tmp_path):
  root = tmp_path / 'nyu'
  _write_nyu(root, n=3, h=4, w=5)
  mat = root / 'nyu_depth_v2_labeled.mat'
  _savemat73(mat, {'images': np.zeros((4, 5, 3, 3), np.uint8),
                   'depths': np.zeros((4, 5, 3), np.float32)})
  with layout_error(r"labels.*nyu_depth_v2_labeled.mat"):
    nyuv2.list_examples(root, 'all')
  _savemat73(mat, {'images': np.zeros((4, 5, 3, 3), np.uint8),
                   'depths': np.zeros((5, 4, 3), np.float32),
                   'labels': np.zeros((4, 5, 3), np.uint16)})
  with layout_error('depths has h5py shape'):
    nyuv2.list_examples(root, 'all')
  scipy.io.savemat(mat, {'images': np.zeros((4, 5, 3, 3), np.uint8)})   # v5, not HDF5
  with layout_error('v7.3'):
    nyuv2.list_examples(root, 'all')
  _write_nyu(root, n=3, h=4, w=5)
  scipy.io.savemat(root / 'splits.mat', {'trainNdxs': np.array([[1]], np.uint16)})
  with layout_error(r"testNdxs.*splits.mat"):
    nyuv2.list_examples(root, 'test')
  scipy.io.savemat(root / 'splits.mat', {'trainNdxs': np.array([[1]], np.uint16),
                                         'testNdxs': np.array([[4]], np.uint16)})
  with layout_error('outside 1..3'):
    nyuv2.list_examples(root, 'test')
  scipy.io.savemat(root / 'classMapping40.mat', {'mapClass': np.ones((1, 10), np.uint8),
                                                 'className': np.zeros((1, 40))})
  with layout_error('classMapping40.mat'):
    nyuv2.list_examples(root, 'all')
  (root / 'classMapping40.mat').write_bytes(b'garbage')
  with layout_error('classMapping40.mat'):
    nyuv2.list_examples(root, 'all')


# ------------------------------------------------------------------------------ real files


def test_real_splits(real):
  s = nyuv2.read_splits(real('nyuv2/splits.mat'))
  assert s['train'].size == 795 and s['test'].size == 654
  assert list(s['test'][:5]) == [1, 2, 9, 14, 15]
  assert sorted(np.concatenate([s['train'], s['test']]).tolist()) == list(range(1, 1450))


def test_real_class_mappings(real):
  m40, names = nyuv2.read_class_mapping40(real('nyuv2/classMapping40.mat'))
  assert m40.shape == (894,) and m40.min() == 1 and m40.max() == 40
  assert set(m40.tolist()) == set(range(1, 41))
  assert names == nyuv2.CLASS_NAMES_40 == tuple(NAMES40)
  m13 = nyuv2.read_class_mapping13(real('nyuv2/class13Mapping.mat'))
  assert m13.shape == (40,) and set(m13.tolist()) == set(range(1, 14))
  raw13 = scipy.io.loadmat(real('nyuv2/class13Mapping.mat'), squeeze_me=True,
                           struct_as_record=False)['classMapping13']
  assert tuple(str(x) for x in raw13.classNames) == nyuv2.CLASS_NAMES_13
  lut = nyuv2.label_lut(m40, m13)
  assert lut[0] == 255 and set(lut[1:].tolist()) == set(range(13))
  # 40-class 'wall' (1) is 13-class 'wall'; 'floor' (2) is 'floor'.
  assert nyuv2.CLASS_NAMES_13[m13[0] - 1] == 'wall'
  assert nyuv2.CLASS_NAMES_13[m13[1] - 1] == 'floor'
  # The published 13-class label of frame 283 uses 0 = void and 1..13.
  lab13 = np.asarray(Image.open(real('nyuv2/class13_00283.png')))
  assert lab13.shape == (480, 640) and set(np.unique(lab13)) <= set(range(14))


def test_real_frame_through_v73(tmp_path, real):
  rgb = np.asarray(Image.open(real('nyuv2/classroom_rgb_00283.jpg')).convert('RGB'))
  assert rgb.shape == (480, 640, 3)
  mm = np.asarray(Image.open(real('nyuv2/bookstore_0001d_00001_depth_mm.png'))).astype(
      np.float32)
  depth = np.kron(mm / 1000.0, np.ones((4, 4), np.float32))  # 120x160 -> 480x640, metres
  root = tmp_path / 'nyu'
  _write_nyu(root, labels=False, images=rgb[..., None], depths=depth[..., None])
  (e,) = nyuv2.list_examples(root, 'all', num_classes=None)
  ex = nyuv2.read_example(e)
  np.testing.assert_array_equal(ex['image'], rgb)
  np.testing.assert_array_equal(ex['depth'], depth)
  np.testing.assert_array_equal(ex['valid'], depth > 0)
  assert ex['depth'].max() <= 10.0
  n = ex['normals'][ex['normals'].any(-1)]
  np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-5)
