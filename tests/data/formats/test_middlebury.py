"""Middlebury 2005/2006 and 2014 readers, PFM parsing, on fixtures and on the real samples."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.formats import middlebury

from ._util import layout_error

CALIB = """cam0=[1870 0 297; 0 1870 277; 0 0 1]
cam1=[1870 0 397; 0 1870 277; 0 0 1]
doffs=100
baseline=160
width={w}
height={h}
ndisp=128
isint=0
vmin=32
vmax=115
dyavg=0
dymax=0
"""


def write_pfm(path, arr, scale=-1 / 255, little=None):
  """PFM writer written from the format description: rows bottom-to-top."""
  arr = np.asarray(arr, np.float32)
  little = scale < 0 if little is None else little
  kind = b'PF' if arr.ndim == 3 else b'Pf'
  h, w = arr.shape[:2]
  data = arr[::-1].astype('<f4' if little else '>f4').tobytes()
  with open(path, 'wb') as f:
    f.write(kind + b'\n' + f'{w} {h}\n'.encode() + f'{scale:.6f}\n'.encode() + data)


@pytest.mark.parametrize('scale', [-1 / 255, -1.0, 1.0, 2.5])
def test_pfm_endianness_and_row_order(tmp_path, scale):
  a = np.arange(12, dtype=np.float32).reshape(3, 4) * 1.5
  a[0, 1] = np.inf
  write_pfm(tmp_path / 'a.pfm', a, scale=scale)
  b, s = middlebury.read_pfm(tmp_path / 'a.pfm', return_scale=True)
  assert b.dtype == np.float32 and b.shape == (3, 4)
  np.testing.assert_array_equal(b, a)       # top row first, values not rescaled
  assert s == pytest.approx(scale, abs=1e-6)


def test_pfm_three_channels(tmp_path):
  a = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
  write_pfm(tmp_path / 'c.pfm', a, scale=1.0)
  np.testing.assert_array_equal(middlebury.read_pfm(tmp_path / 'c.pfm'), a)


def test_pfm_corrupt(tmp_path):
  a = np.ones((4, 4), np.float32)
  write_pfm(tmp_path / 'a.pfm', a)
  blob = (tmp_path / 'a.pfm').read_bytes()
  (tmp_path / 'cut.pfm').write_bytes(blob[:-5])
  (tmp_path / 'magic.pfm').write_bytes(b'P6' + blob[2:])
  (tmp_path / 'head.pfm').write_bytes(b'Pf\nfour 4\n-1\n' + blob[-64:])
  for name in ('cut.pfm', 'magic.pfm', 'head.pfm'):
    with layout_error(name):
      middlebury.read_pfm(tmp_path / name)


def _scene_2014(root, name='Art', h=6, w=9):
  d = root / name
  d.mkdir(parents=True)
  rng = np.random.default_rng(0)
  disp = rng.uniform(30, 110, (h, w)).astype(np.float32)
  disp[0, 0] = disp[2, 3] = np.inf
  write_pfm(d / 'disp0GT.pfm', disp)
  img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
  Image.fromarray(img).save(d / 'im0.png')
  (d / 'calib.txt').write_text(CALIB.format(w=w, h=h))
  return disp, img


def _scene_2005(root, name='Art', h=7, w=10, dmin=230):
  d = root / name
  d.mkdir(parents=True)
  rng = np.random.default_rng(1)
  raw = rng.integers(0, 256, (h, w)).astype(np.uint8)
  raw[0, :4] = 0
  Image.fromarray(raw).save(d / 'disp1.png')
  img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
  Image.fromarray(img).save(d / 'view1.png')
  (d / 'dmin.txt').write_text(f'{dmin}\n')
  return raw, img


def test_2014_scene(tmp_path):
  disp, img = _scene_2014(tmp_path / 'trainingH')
  (e,) = middlebury.list_examples(tmp_path, 'trainingH')
  assert e['format'] == '2014' and e['id'] == 'Art'
  ex = middlebury.read_example(e)
  fin = np.isfinite(disp)
  np.testing.assert_array_equal(ex['image'], img)
  np.testing.assert_array_equal(ex['valid'], fin)
  np.testing.assert_array_equal(ex['disparity'], np.where(fin, disp, 0))
  depth_m = 160.0 * 1870.0 / (disp.astype(np.float64) + 100.0) / 1000.0
  np.testing.assert_allclose(ex['depth'][fin], depth_m[fin], rtol=1e-6)
  assert (ex['depth'][~fin] == 0).all() and ex['depth'].dtype == np.float32


@pytest.mark.parametrize('size,factor', [('FullSize', 1), ('HalfSize', 2), ('ThirdSize', 3)])
def test_2005_2006_scene(tmp_path, size, factor):
  raw, img = _scene_2005(tmp_path / size, dmin=230)
  (e,) = middlebury.list_examples(tmp_path, size)
  assert e['format'] == '2005/2006' and e['size_factor'] == factor
  ex = middlebury.read_example(e)
  known = raw > 0
  np.testing.assert_array_equal(ex['valid'], known)
  np.testing.assert_array_equal(ex['disparity'], np.where(known, raw + 230.0, 0))
  depth_m = (3740.0 / factor) * 160.0 / (raw + 230.0) / 1000.0
  np.testing.assert_allclose(ex['depth'][known], depth_m[known], rtol=1e-6)
  assert (ex['depth'][~known] == 0).all()


def test_mixed_and_bad_layouts(tmp_path):
  with layout_error('FullSize'):
    middlebury.list_examples(tmp_path, 'FullSize')
  (tmp_path / 'FullSize').mkdir()
  with layout_error('no scene directories'):
    middlebury.list_examples(tmp_path, 'FullSize')
  _scene_2005(tmp_path / 'FullSize', 'Books')
  _scene_2005(tmp_path / 'FullSize', 'Aloe')
  assert [e['id'] for e in middlebury.list_examples(tmp_path, 'FullSize')] == ['Aloe', 'Books']
  os.remove(tmp_path / 'FullSize/Books/dmin.txt')
  with layout_error('Books/dmin.txt'):
    middlebury.list_examples(tmp_path, 'FullSize')
  _scene_2014(tmp_path / 'trainingQ')
  os.remove(tmp_path / 'trainingQ/Art/disp0GT.pfm')
  with layout_error('disp0GT.pfm'):
    middlebury.list_examples(tmp_path, 'trainingQ')


def test_bad_calib_and_dmin(tmp_path):
  _scene_2014(tmp_path / 'q')
  (tmp_path / 'q/Art/calib.txt').write_text('cam0=[1870 0 297; 0 1870 277; 0 0 1]\n')
  (e,) = middlebury.list_examples(tmp_path, 'q')
  with layout_error('calib.txt'):
    middlebury.read_example(e)
  _scene_2005(tmp_path / 'FullSize')
  (tmp_path / 'FullSize/Art/dmin.txt').write_text('abc')
  (e,) = middlebury.list_examples(tmp_path, 'FullSize')
  with layout_error('dmin.txt'):
    middlebury.read_example(e)
  (tmp_path / 'FullSize/Art/dmin.txt').write_text('230')
  blob = (tmp_path / 'FullSize/Art/disp1.png').read_bytes()
  (tmp_path / 'FullSize/Art/disp1.png').write_bytes(blob[:len(blob) // 2])
  with layout_error('Art/disp1.png'):
    middlebury.read_example(e)
  Image.fromarray(np.zeros((7, 10, 3), np.uint8)).save(tmp_path / 'FullSize/Art/disp1.png')
  with layout_error('single-channel.*Art/disp1.png'):
    middlebury.read_example(e)


# ------------------------------------------------------------------------------ real samples


def test_real_2014_artl_pfm(real):
  d, scale = middlebury.read_pfm(real('middlebury/2014_ArtL/disp0GT.pfm'), return_scale=True)
  assert d.shape == (554, 694)                       # 694 x 554 (W x H)
  assert scale == pytest.approx(-0.003922)
  assert int(np.isinf(d).sum()) == 896
  fin = d[np.isfinite(d)]
  assert 37.0 < fin.min() < 39.5 and 110.0 < fin.max() < 112.0


def test_real_2014_artl_scene_depth(tmp_path, real):
  src = real('middlebury/2014_ArtL')
  real('middlebury/2014_ArtL/im0.png')
  (tmp_path / 'trainingH').mkdir()
  os.symlink(src, tmp_path / 'trainingH' / 'ArtL')
  (e,) = middlebury.list_examples(tmp_path, 'trainingH')
  cal = middlebury.read_calib(e['calib'])
  assert (cal['f'], cal['doffs'], cal['baseline']) == (1870.0, 100.0, 160.0)
  assert (cal['width'], cal['height'], cal['cx'], cal['cy']) == (694, 554, 297, 277)
  ex = middlebury.read_example(e)
  assert ex['image'].shape == (554, 694, 3)
  assert int((~ex['valid']).sum()) == 896
  d = ex['disparity'][ex['valid']].astype(np.float64)
  np.testing.assert_allclose(ex['depth'][ex['valid']], 160 * 1870 / (d + 100) / 1000,
                             rtol=1e-6)
  # ~1.4 m .. 2.2 m: a table-top scene.
  assert 1.4 < ex['depth'][ex['valid']].min() and ex['depth'].max() < 2.2


def test_real_2005_2006_disparity_pngs(tmp_path, real):
  aloe = middlebury.read_disp_png(real('middlebury/2006_aloe/disp1.png'))
  assert aloe.shape == (1110, 1282) and aloe.dtype == np.uint8
  unknown = aloe == 0
  assert 0 < unknown.mean() < 0.5
  art = middlebury.read_disp_png(real('middlebury/2005_art/gt_disp.png'))
  assert art.shape == (1088, 1376) and art.min() > 0     # hole-filled
  # The Aloe map inside a FullSize scene: 0 stays unknown (dmin is not shipped; use 0).
  scene = tmp_path / 'FullSize' / 'Aloe'
  scene.mkdir(parents=True)
  os.symlink(real('middlebury/2006_aloe/disp1.png'), scene / 'disp1.png')
  Image.fromarray(np.zeros((1110, 1282, 3), np.uint8)).save(scene / 'view1.png')
  (scene / 'dmin.txt').write_text('0\n')
  (e,) = middlebury.list_examples(tmp_path, 'FullSize')
  ex = middlebury.read_example(e)
  np.testing.assert_array_equal(ex['valid'], ~unknown)
  np.testing.assert_array_equal(ex['disparity'], aloe.astype(np.float32))
