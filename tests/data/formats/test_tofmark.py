"""ToFMark reader with its pluggable depth-reader registry."""

import warnings

import numpy as np
import pytest
import scipy.io
from PIL import Image

from jaxseg.data.formats import tofmark

from ._util import layout_error


def _write_tofmark(root, scenes=tofmark.SCENES, lr_hw=(6, 8), hr_hw=(24, 32)):
  rng = np.random.default_rng(0)
  out = {}
  for s in scenes:
    d = root / s
    d.mkdir(parents=True)
    lr = rng.integers(400, 1001, lr_hw).astype(np.uint16)   # millimetres
    hr = rng.integers(400, 1001, hr_hw).astype(np.uint16)
    hr[0, 0] = 0                                              # invalid
    Image.fromarray(lr).save(d / 'tof.png')
    Image.fromarray(hr).save(d / 'groundtruth.png')
    guide = rng.integers(0, 256, hr_hw).astype(np.uint8)
    Image.fromarray(guide).save(d / 'intensity.png')
    out[s] = (lr, hr, guide)
  return out


def test_png16_mm_default(tmp_path):
  written = _write_tofmark(tmp_path)
  entries = tofmark.list_examples(tmp_path)
  assert [e['id'] for e in entries] == ['Books', 'Devil', 'Shark']
  for e in entries:
    lr, hr, guide = written[e['id']]
    ex = tofmark.read_example(e)
    np.testing.assert_allclose(ex['depth'], hr / 1000.0, rtol=1e-7)   # metres
    np.testing.assert_allclose(ex['depth_lr'], lr / 1000.0, rtol=1e-7)
    assert ex['depth'].dtype == np.float32 and not ex['valid'][0, 0]
    assert ex['valid'].sum() == hr.size - 1
    assert ex['image'].shape == hr.shape + (3,)
    np.testing.assert_array_equal(ex['image'][..., 1], guide)


def test_plugged_reader(tmp_path):
  for s in ('Books', 'Shark'):
    (tmp_path / s).mkdir()
    np.savetxt(tmp_path / s / 'gt.txt', np.full((2, 3), 812.0))

  @tofmark.register_reader('txt_mm')
  def read_txt(path):  # pylint: disable=unused-variable
    return (np.loadtxt(path) / 1000.0).astype(np.float32)

  try:
    entries = tofmark.list_examples(tmp_path, reader='txt_mm',
                                    files={'depth': 'gt.txt', 'depth_lr': None,
                                           'guide': None})
    assert [e['id'] for e in entries] == ['Books', 'Shark']
    ex = tofmark.read_example(entries[0])
    np.testing.assert_allclose(ex['depth'], 0.812)
    assert set(ex) == {'depth', 'valid'}
  finally:
    tofmark.READERS.pop('txt_mm')


def test_npy_and_mat_readers(tmp_path):
  mm = np.array([[500.0, -1.0], [np.nan, 750.0], [0.0, 1000.0]])   # < 0: invalid
  np.save(tmp_path / 'd.npy', mm)
  expect = np.array([[0.5, 0], [0, 0.75], [0, 1.0]], np.float32)
  np.testing.assert_array_equal(tofmark.READERS['npy_mm'](tmp_path / 'd.npy'), expect)
  scipy.io.savemat(tmp_path / 'v5.mat', {'depth': mm})
  np.testing.assert_array_equal(tofmark.READERS['mat_mm'](tmp_path / 'v5.mat'), expect)
  hdf5storage = pytest.importorskip('hdf5storage')
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    hdf5storage.savemat(str(tmp_path / 'v73.mat'), {'depth': mm}, format='7.3',
                        matlab_compatible=True, truncate_existing=True)
  np.testing.assert_array_equal(tofmark.READERS['mat_mm'](tmp_path / 'v73.mat'), expect)
  scipy.io.savemat(tmp_path / 'other.mat', {'z': mm})
  with layout_error(r"depth.*other.mat"):
    tofmark.READERS['mat_mm'](tmp_path / 'other.mat')
  np.save(tmp_path / 'three.npy', np.zeros((2, 2, 2)))
  with layout_error('three.npy'):
    tofmark.READERS['npy_mm'](tmp_path / 'three.npy')


def test_bad_layouts(tmp_path):
  with layout_error('no ToFMark scene'):
    tofmark.list_examples(tmp_path)
  _write_tofmark(tmp_path, scenes=('Devil',))
  with pytest.raises(KeyError, match='unknown ToFMark reader'):
    tofmark.list_examples(tmp_path, reader='nope')
  (tmp_path / 'Devil/groundtruth.png').unlink()
  with layout_error('Devil/groundtruth.png'):
    tofmark.list_examples(tmp_path)
  Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / 'Devil/groundtruth.png')
  (tmp_path / 'Devil/tof.png').write_bytes(b'\x89PNG\r\n\x1a\nbroken')
  (e,) = tofmark.list_examples(tmp_path)
  with layout_error('Devil/tof.png'):
    tofmark.read_example(e)
