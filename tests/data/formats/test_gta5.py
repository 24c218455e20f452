"""GTA5 reader on format-exact fixtures (palette label PNGs) and on real Cityscapes label ids."""

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.formats import gta5

from ._util import layout_error

EXPECTED = {i: 255 for i in range(256)}
EXPECTED.update({7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18})


def _palette_png(path, ids):
  """Writes ids as a 'P' PNG carrying a Cityscapes-like colour palette (index = label id)."""
  ids = np.ascontiguousarray(ids, np.uint8)
  im = Image.frombytes('P', (ids.shape[1], ids.shape[0]), ids.tobytes())
  pal = np.zeros((256, 3), np.uint8)
  pal[7:34] = np.random.default_rng(7).integers(0, 256, (27, 3))
  im.putpalette(pal.ravel().tolist())
  im.save(path)
  assert Image.open(path).mode == 'P'


def _write_gta(root, n=3, h=10, w=16, label_hw=None):
  (root / 'images').mkdir(parents=True)
  (root / 'labels').mkdir()
  rng = np.random.default_rng(0)
  out = {}
  for k in range(1, n + 1):
    name = f'{k:05d}'
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    Image.fromarray(img).save(root / 'images' / f'{name}.png')
    lh, lw = label_hw or (h, w)
    ids = rng.permutation(np.arange(lh * lw) % 36).reshape(lh, lw)   # ids 0..35
    _palette_png(root / 'labels' / f'{name}.png', ids)
    out[name] = (img, ids.astype(np.uint8))
  return out


def test_roundtrip_every_id(tmp_path):
  written = _write_gta(tmp_path / 'GTA5')
  entries = gta5.list_examples(tmp_path / 'GTA5')
  assert [e['id'] for e in entries] == ['00001', '00002', '00003']
  assert gta5.list_examples(tmp_path / 'GTA5', 'train') == entries
  for e in entries:
    img, ids = written[e['id']]
    ex = gta5.read_example(e)
    np.testing.assert_array_equal(ex['image'], img)
    assert ex['label'].dtype == np.uint8
    np.testing.assert_array_equal(ex['label'], np.vectorize(EXPECTED.get)(ids))


def test_label_resized_nearest_to_image(tmp_path):
  written = _write_gta(tmp_path / 'GTA5', n=1, h=10, w=16, label_hw=(7, 11))
  (e,) = gta5.list_examples(tmp_path / 'GTA5')
  ex = gta5.read_example(e)
  ids = written['00001'][1]
  ref = np.asarray(Image.fromarray(ids).resize((16, 10), Image.NEAREST))
  assert ex['label'].shape == (10, 16)
  np.testing.assert_array_equal(ex['label'], np.vectorize(EXPECTED.get)(ref))


def test_bad_layouts(tmp_path):
  with layout_error('GTA5'):
    gta5.list_examples(tmp_path / 'GTA5')
  _write_gta(tmp_path / 'GTA5')
  with pytest.raises(ValueError):
    gta5.list_examples(tmp_path / 'GTA5', 'val')
  (tmp_path / 'GTA5/labels/00002.png').unlink()
  with layout_error('labels/00002.png'):
    gta5.list_examples(tmp_path / 'GTA5')


def test_corrupt_label(tmp_path):
  _write_gta(tmp_path / 'GTA5', n=1)
  (e,) = gta5.list_examples(tmp_path / 'GTA5')
  blob = open(e['label'], 'rb').read()
  open(e['label'], 'wb').write(blob[:60])
  with layout_error('labels/00001.png'):
    gta5.read_example(e)
  Image.fromarray(np.zeros((10, 16, 3), np.uint8)).save(e['label'])   # RGB, not palette
  with layout_error('single-channel'):
    gta5.read_example(e)


def test_real_cityscapes_ids_as_gta_palette_png(tmp_path, real):
  ids = np.asarray(Image.open(
      real('cityscapes/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png')))
  image = np.asarray(Image.open(
      real('cityscapes/leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png'))
      .convert('RGB'))
  root = tmp_path / 'GTA5'
  (root / 'images').mkdir(parents=True)
  (root / 'labels').mkdir()
  Image.fromarray(image).save(root / 'images/00001.png')
  _palette_png(root / 'labels/00001.png', ids)
  (e,) = gta5.list_examples(root)
  ex = gta5.read_example(e)
  np.testing.assert_array_equal(ex['image'], image)
  np.testing.assert_array_equal(ex['label'], np.vectorize(EXPECTED.get)(ids))
