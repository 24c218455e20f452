"""MPI Sintel `.dpt` / `.cam` readers on format-exact fixtures."""

import struct

import numpy as np
from PIL import Image

from jaxseg.data.formats import middlebury, sintel

from ._util import layout_error


def write_dpt(path, depth, tag=202021.25):
  """Written from the format description: float32 tag, int32 W, int32 H, row-major <f4."""
  depth = np.asarray(depth, '<f4')
  h, w = depth.shape
  with open(path, 'wb') as f:
    f.write(struct.pack('<fii', tag, w, h) + depth.tobytes())


def write_cam(path, k, e):
  with open(path, 'wb') as f:
    f.write(struct.pack('<f', 202021.25) + np.asarray(k, '<f8').tobytes()
            + np.asarray(e, '<f8').tobytes())


def _write_sintel(root, depths, image_pass='clean'):
  out = {}
  for (scene, frame), depth in depths.items():
    for sub in ('depth', 'camdata_left', image_pass):
      (root / 'training' / sub / scene).mkdir(parents=True, exist_ok=True)
    write_dpt(root / 'training/depth' / scene / f'{frame}.dpt', depth)
    img = np.random.default_rng(0).integers(0, 256, depth.shape + (3,)).astype(np.uint8)
    Image.fromarray(img).save(root / 'training' / image_pass / scene / f'{frame}.png')
    out[f'{scene}/{frame}'] = (depth, img)
  return out


def test_roundtrip(tmp_path):
  rng = np.random.default_rng(0)
  depths = {('alley_1', 'frame_0001'): rng.uniform(0.5, 80, (5, 7)).astype(np.float32),
            ('alley_1', 'frame_0002'): rng.uniform(0.5, 80, (5, 7)).astype(np.float32),
            ('bamboo_2', 'frame_0001'): rng.uniform(0.5, 80, (5, 7)).astype(np.float32)}
  written = _write_sintel(tmp_path, depths)
  entries = sintel.list_examples(tmp_path)
  assert [e['id'] for e in entries] == ['alley_1/frame_0001', 'alley_1/frame_0002',
                                       'bamboo_2/frame_0001']
  for e in entries:
    depth, img = written[e['id']]
    ex = sintel.read_example(e)
    np.testing.assert_array_equal(ex['depth'], depth)
    np.testing.assert_array_equal(ex['image'], img)
    assert ex['valid'].all() and ex['depth'].dtype == np.float32
  assert set(sintel.read_example(sintel.list_examples(tmp_path, image_pass=None)[0])) == {
      'depth', 'valid'}


def test_dpt_from_real_middlebury_depth(tmp_path, real):
  d = middlebury.read_pfm(real('middlebury/2014_ArtL/disp0GT.pfm'))
  depth = np.where(np.isfinite(d), 160 * 1870 / (d + 100), 0).astype(np.float32)   # mm
  write_dpt(tmp_path / 'a.dpt', depth)
  out = sintel.read_dpt(tmp_path / 'a.dpt')
  assert out.shape == (554, 694)
  np.testing.assert_array_equal(out, depth)


def test_cam(tmp_path):
  k = np.array([[1120.0, 0, 511.5], [0, 1120.0, 217.5], [0, 0, 1]])
  e = np.arange(12, dtype=np.float64).reshape(3, 4)
  write_cam(tmp_path / 'f.cam', k, e)
  k2, e2 = sintel.read_cam(tmp_path / 'f.cam')
  np.testing.assert_array_equal(k2, k)
  np.testing.assert_array_equal(e2, e)
  (tmp_path / 'g.cam').write_bytes((tmp_path / 'f.cam').read_bytes()[:50])
  with layout_error('g.cam'):
    sintel.read_cam(tmp_path / 'g.cam')


def test_bad_files(tmp_path):
  d = np.ones((3, 4), np.float32)
  write_dpt(tmp_path / 'tag.dpt', d, tag=1.0)
  with layout_error('bad tag.*tag.dpt'):
    sintel.read_dpt(tmp_path / 'tag.dpt')
  write_dpt(tmp_path / 'cut.dpt', d)
  blob = (tmp_path / 'cut.dpt').read_bytes()
  (tmp_path / 'cut.dpt').write_bytes(blob[:-4])
  with layout_error('truncated.*cut.dpt'):
    sintel.read_dpt(tmp_path / 'cut.dpt')
  (tmp_path / 'big.dpt').write_bytes(struct.pack('<fii', 202021.25, 100000, 100000))
  with layout_error('implausible.*big.dpt'):
    sintel.read_dpt(tmp_path / 'big.dpt')
  (tmp_path / 'short.dpt').write_bytes(b'PIEH')
  with layout_error('short.dpt'):
    sintel.read_dpt(tmp_path / 'short.dpt')


def test_missing_image_or_depth_dir(tmp_path):
  with layout_error('training/depth'):
    sintel.list_examples(tmp_path)
  _write_sintel(tmp_path, {('alley_1', 'frame_0001'): np.ones((2, 2), np.float32)})
  (tmp_path / 'training/clean/alley_1/frame_0001.png').unlink()
  with layout_error('clean/alley_1/frame_0001.png'):
    sintel.list_examples(tmp_path)
  with layout_error('final/alley_1/frame_0001.png'):
    sintel.list_examples(tmp_path, image_pass='final')
