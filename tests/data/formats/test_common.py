"""Tests for jaxseg.data.formats.common: errors, PNG decoding at native bit depth."""

import pickle
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.formats import common, png
from jaxseg.data.formats.common import DatasetLayoutError

from ._util import layout_error

LAYOUT = '<root>/\n  thing.png'


def _png_chunks(path):
  blob = path.read_bytes()
  pos, out = 8, []
  while pos < len(blob):
    n, kind = struct.unpack('>I4s', blob[pos:pos + 8])
    out.append((kind, blob[pos + 8:pos + 8 + n]))
    pos += 12 + n
  return out


def test_error_message_names_file_and_layout(tmp_path):
  err = DatasetLayoutError(tmp_path / 'a.png', LAYOUT, 'missing file')
  assert str(tmp_path / 'a.png') in str(err)
  assert 'Expected layout:' in str(err) and 'thing.png' in str(err)
  assert err.path == str(tmp_path / 'a.png') and err.expected == LAYOUT
  again = pickle.loads(pickle.dumps(err))
  assert str(again) == str(err) and again.path == err.path and again.reason == err.reason


def test_require_helpers(tmp_path):
  with layout_error('missing directory.*nope'):
    common.require_dir(tmp_path / 'nope', LAYOUT)
  with layout_error('missing file.*x.txt'):
    common.require_file(tmp_path / 'x.txt', LAYOUT)
  with layout_error('no \\*.png files'):
    common.list_files(tmp_path, '.png', LAYOUT)


@pytest.mark.parametrize('shape,dtype', [
    ((7, 9, 3), np.uint16), ((5, 4), np.uint16), ((6, 5, 4), np.uint8), ((3, 3), np.uint8),
    ((4, 6, 2), np.uint16), ((5, 7, 3), np.uint8), ((6, 3, 4), np.uint16), ((1, 1, 3), np.uint16)])
def test_png_roundtrip_every_filter(tmp_path, shape, dtype):
  rng = np.random.default_rng(0)
  a = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
  for filters in [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4), (4, 3, 2, 1)]:
    path = tmp_path / 'x.png'
    png.write_png(path, a, filters=filters)
    b = png.read_png(path, LAYOUT)
    assert b.dtype == dtype and b.shape == a.shape
    np.testing.assert_array_equal(b, a)


def test_png_channel_subset(tmp_path):
  rng = np.random.default_rng(1)
  a = rng.integers(0, 65536, (9, 11, 3)).astype(np.uint16)
  png.write_png(tmp_path / 'x.png', a, filters=(3, 4, 1, 2, 0))
  for ch in [(0,), (1,), (2,), (0, 2)]:
    b = png.read_png(tmp_path / 'x.png', LAYOUT, channels=ch)
    np.testing.assert_array_equal(b[..., list(ch)], a[..., list(ch)])
    others = [c for c in range(3) if c not in ch]
    assert (b[..., others] == 0).all()


def test_png16_rgb_fast_path_matches_pure_decoder(tmp_path):
  rng = np.random.default_rng(2)
  a = rng.integers(0, 65536, (13, 17, 3)).astype(np.uint16)
  png.write_png(tmp_path / 'x.png', a, filters=(0, 1, 2, 3, 4))
  fast = png.read_png16_rgb(tmp_path / 'x.png', LAYOUT)
  np.testing.assert_array_equal(fast, a)
  np.testing.assert_array_equal(fast, png.read_png(tmp_path / 'x.png', LAYOUT))
  # Pillow alone loses the low byte, which is why the dedicated reader exists.
  assert not np.array_equal(np.asarray(Image.open(tmp_path / 'x.png')).astype(np.uint16), a)


def test_png16_rgb_rejects_8bit(tmp_path):
  png.write_png(tmp_path / 'x.png', np.zeros((2, 2, 3), np.uint8))
  with layout_error('16-bit 3-channel.*x.png'):
    png.read_png16_rgb(tmp_path / 'x.png', LAYOUT)


def test_png_decoder_reads_pillow_files(tmp_path):
  rng = np.random.default_rng(3)
  grey16 = rng.integers(0, 65536, (6, 7)).astype(np.uint16)
  Image.fromarray(grey16).save(tmp_path / 'g16.png')
  np.testing.assert_array_equal(png.read_png(tmp_path / 'g16.png', LAYOUT), grey16)
  rgb = rng.integers(0, 256, (8, 5, 3)).astype(np.uint8)
  Image.fromarray(rgb).save(tmp_path / 'rgb.png', optimize=True)
  np.testing.assert_array_equal(png.read_png(tmp_path / 'rgb.png', LAYOUT), rgb)
  pal = Image.fromarray(rng.integers(0, 30, (4, 6)).astype(np.uint8)).convert('P')
  pal.putpalette(list(range(256)) * 3)
  pal.save(tmp_path / 'p.png')
  np.testing.assert_array_equal(png.read_png(tmp_path / 'p.png', LAYOUT), np.asarray(pal))


def test_png_corruption_is_reported(tmp_path):
  a = np.arange(200, dtype=np.uint16).reshape(10, 20)
  good = tmp_path / 'good.png'
  png.write_png(good, a, filters=(4,))
  blob = good.read_bytes()
  cases = {
      'truncated.png': blob[:len(blob) // 2],
      'nosig.png': b'GIF89a' + blob[6:],
      'crc.png': blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:],
      'empty.png': b'',
  }
  for name, data in cases.items():
    (tmp_path / name).write_bytes(data)
    with layout_error(name):
      png.read_png(tmp_path / name, LAYOUT)
  # Valid chunks but too little image data.
  kinds = _png_chunks(good)
  ihdr = kinds[0][1]
  short = zlib.compress(b'\x00' * 5)

  def chunk(kind, body):
    return (struct.pack('>I', len(body)) + kind + body
            + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF))

  (tmp_path / 'short.png').write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr)
                                       + chunk(b'IDAT', short) + chunk(b'IEND', b''))
  with layout_error('short.png'):
    png.read_png(tmp_path / 'short.png', LAYOUT)


def test_pillow_readers_report_corruption(tmp_path):
  Image.fromarray(np.zeros((40, 40, 3), np.uint8) + 7).save(tmp_path / 'ok.png')
  blob = (tmp_path / 'ok.png').read_bytes()
  (tmp_path / 'cut.png').write_bytes(blob[:len(blob) // 2])
  (tmp_path / 'junk.png').write_bytes(b'not an image at all')
  for name in ('cut.png', 'junk.png'):
    with layout_error(name):
      common.read_rgb(tmp_path / name, LAYOUT)
  with layout_error('single-channel.*ok.png'):
    common.read_index_png(tmp_path / 'ok.png', LAYOUT)


def test_resize_nearest_matches_pil():
  a = np.random.default_rng(4).integers(0, 34, (13, 21)).astype(np.uint8)
  for size in [(7, 9), (26, 40), (13, 22), (5, 50)]:
    ref = np.asarray(Image.fromarray(a).resize(size[::-1], Image.NEAREST))
    np.testing.assert_array_equal(common.resize_nearest(a, size), ref)


def test_map_labels_out_of_table():
  lut = common.make_lut({1: 0, 2: 1}, size=3)
  np.testing.assert_array_equal(common.map_labels(np.array([0, 1, 2, 7]), lut),
                                [255, 0, 1, 255])
