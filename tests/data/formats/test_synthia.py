"""SYNTHIA-RAND-CITYSCAPES reader on format-exact 16-bit 3-channel label PNGs."""

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.formats import cityscapes, png, synthia

from ._util import layout_error

# SYNTHIA id -> Cityscapes trainId (datasets.md §4), written out independently of the module.
TO_19 = {3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10, 10: 11, 17: 12,
         8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18}
# 16 classes: road sidewalk building wall fence pole light sign vegetation sky person rider car
# bus motorcycle bicycle.
TO_16 = {3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 1: 9, 10: 10, 17: 11, 8: 12,
         19: 13, 12: 14, 11: 15}
# 13 classes: road sidewalk building light sign vegetation sky person rider car bus motorcycle
# bicycle.
TO_13 = {3: 0, 4: 1, 2: 2, 15: 3, 9: 4, 6: 5, 1: 6, 10: 7, 17: 8, 8: 9, 19: 10, 12: 11, 11: 12}
TABLES = {19: TO_19, 16: TO_16, 13: TO_13}

H, W = 9, 14


def _expected(ids, table):
  return np.vectorize(lambda i: table.get(int(i), 255))(ids).astype(np.uint8)


def _write_synthia(root, ids_list, filters=(0, 1, 2, 3, 4)):
  (root / 'RGB').mkdir(parents=True)
  (root / 'GT' / 'LABELS').mkdir(parents=True)
  rng = np.random.default_rng(0)
  out = {}
  for k, ids in enumerate(ids_list):
    name = f'{k:07d}'
    h, w = ids.shape
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    Image.fromarray(img).save(root / 'RGB' / f'{name}.png')
    inst = rng.integers(0, 65536, (h, w)).astype(np.uint16)
    lab = np.stack([ids.astype(np.uint16), inst, np.zeros_like(inst)], -1)
    png.write_png(root / 'GT' / 'LABELS' / f'{name}.png', lab, filters=filters)
    out[name] = (img, ids)
  return out


def _all_ids():
  ids = np.concatenate([np.arange(0, 40), [255, 256, 300, 1000, 4099, 65535]])
  rng = np.random.default_rng(1)
  return rng.permutation(np.resize(ids, H * W)).reshape(H, W).astype(np.uint16)


def test_tables_cover_every_id():
  for n, table in TABLES.items():
    lut = synthia.LUTS[n]
    for i in range(65536):
      if lut[i] != table.get(i, 255):
        raise AssertionError((n, i, lut[i]))
  assert synthia.CLASS_NAMES_16 == ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                                    'traffic light', 'traffic sign', 'vegetation', 'sky',
                                    'person', 'rider', 'car', 'bus', 'motorcycle', 'bicycle')
  assert synthia.CLASS_NAMES_13 == ('road', 'sidewalk', 'building', 'traffic light',
                                    'traffic sign', 'vegetation', 'sky', 'person', 'rider',
                                    'car', 'bus', 'motorcycle', 'bicycle')
  assert synthia.PALETTES[13].shape == (13, 3)


@pytest.mark.parametrize('num_classes', [16, 13, 19])
def test_roundtrip_16bit_labels(tmp_path, num_classes):
  ids = _all_ids()
  written = _write_synthia(tmp_path / 'RAND_CITYSCAPES', [ids, ids[::-1].copy()])
  entries = synthia.list_examples(tmp_path / 'RAND_CITYSCAPES', num_classes=num_classes)
  assert [e['id'] for e in entries] == ['0000000', '0000001']
  for e in entries:
    img, ref = written[e['id']]
    np.testing.assert_array_equal(synthia.read_label_ids(e['label']), ref)
    ex = synthia.read_example(e)
    np.testing.assert_array_equal(ex['image'], img)
    assert ex['label'].dtype == np.uint8 and ex['label'].shape == ref.shape
    np.testing.assert_array_equal(ex['label'], _expected(ref, TABLES[num_classes]))


def test_pillow_would_lose_the_ids(tmp_path):
  ids = _all_ids()
  _write_synthia(tmp_path / 'R', [ids])
  via_pil = np.asarray(Image.open(tmp_path / 'R/GT/LABELS/0000000.png'))[..., 0]
  assert not np.array_equal(via_pil.astype(np.uint16), ids)   # 8-bit reduction
  np.testing.assert_array_equal(synthia.read_label_ids(tmp_path / 'R/GT/LABELS/0000000.png'),
                                ids)


def test_pure_decoder_agrees(tmp_path):
  ids = _all_ids()
  _write_synthia(tmp_path / 'R', [ids], filters=(4, 3))
  path = tmp_path / 'R/GT/LABELS/0000000.png'
  pure = png.read_png(path, synthia.EXPECTED_LAYOUT, channels=(0,))[..., 0]
  np.testing.assert_array_equal(pure, ids)


def test_bad_layouts(tmp_path):
  root = tmp_path / 'RAND_CITYSCAPES'
  with layout_error('RAND_CITYSCAPES'):
    synthia.list_examples(root)
  _write_synthia(root, [_all_ids(), _all_ids()])
  with pytest.raises(ValueError):
    synthia.list_examples(root, num_classes=7)
  (root / 'GT/LABELS/0000001.png').unlink()
  with layout_error('GT/LABELS/0000001.png'):
    synthia.list_examples(root)
  (root / 'GT/LABELS/0000000.png').unlink()
  (root / 'GT/LABELS').rmdir()
  with layout_error('GT/LABELS'):
    synthia.list_examples(root)


def test_corrupt_or_wrong_label_png(tmp_path):
  root = tmp_path / 'RAND_CITYSCAPES'
  _write_synthia(root, [_all_ids()])
  (e,) = synthia.list_examples(root)
  blob = open(e['label'], 'rb').read()
  open(e['label'], 'wb').write(blob[:len(blob) - 30])
  with layout_error('GT/LABELS/0000000.png'):
    synthia.read_example(e)
  Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(e['label'])   # 8-bit RGB
  with layout_error('16-bit 3-channel.*0000000.png'):
    synthia.read_example(e)
  png.write_png(e['label'], np.zeros((H + 1, W, 3), np.uint16))
  with layout_error('differs from the image'):
    synthia.read_example(e)


def test_real_cityscapes_labels_as_synthia_ids(tmp_path, real):
  ids = np.asarray(Image.open(
      real('cityscapes/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png')))
  train = cityscapes.label_ids_to_train_ids(ids)
  to_synthia = {t: s for s, t in TO_19.items()}
  syn = np.vectorize(lambda t: to_synthia.get(int(t), 0))(train).astype(np.uint16)
  _write_synthia(tmp_path / 'R', [syn], filters=(4,))
  (e,) = synthia.list_examples(tmp_path / 'R', num_classes=19)
  np.testing.assert_array_equal(synthia.read_example(e)['label'], train)
