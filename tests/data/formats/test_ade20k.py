"""ADE20K (ADEChallengeData2016) reader on format-exact fixtures."""

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.formats import ade20k

from ._util import layout_error


def _write_ade(root, split='training', prefix='ADE_train', n=2, h=12, w=16):
  (root / 'images' / split).mkdir(parents=True)
  (root / 'annotations' / split).mkdir(parents=True)
  rng = np.random.default_rng(0)
  out = {}
  for k in range(1, n + 1):
    name = f'{prefix}_{k:08d}'
    Image.fromarray(rng.integers(0, 256, (h, w, 3)).astype(np.uint8)).save(
        root / 'images' / split / f'{name}.jpg')
    ann = rng.permutation(np.resize(np.r_[np.arange(151), 151, 200, 255], h * w))
    ann = ann.reshape(h, w).astype(np.uint8)
    Image.fromarray(ann).save(root / 'annotations' / split / f'{name}.png')
    out[name] = ann
  return out


def test_names():
  assert len(ade20k.CLASS_NAMES) == 150 == len(set(ade20k.CLASS_NAMES))
  assert ade20k.CLASS_NAMES[:3] == ('wall', 'building', 'sky')
  assert ade20k.CLASS_NAMES[-1] == 'flag'


@pytest.mark.parametrize('split', ['training', 'train'])
def test_reduce_zero_label(tmp_path, split):
  written = _write_ade(tmp_path / 'ADEChallengeData2016')
  entries = ade20k.list_examples(tmp_path / 'ADEChallengeData2016', split)
  assert [e['id'] for e in entries] == ['ADE_train_00000001', 'ADE_train_00000002']
  for e in entries:
    ann = written[e['id']].astype(int)
    ex = ade20k.read_example(e)
    expected = np.where((ann >= 1) & (ann <= 150), ann - 1, 255)
    np.testing.assert_array_equal(ex['label'], expected)
    assert ex['label'].dtype == np.uint8 and ex['image'].shape == (12, 16, 3)
  lut_check = ade20k.reduce_zero_label(np.arange(256))
  assert lut_check[0] == 255 and lut_check[1] == 0 and lut_check[150] == 149
  assert (lut_check[151:] == 255).all()


def test_validation_alias(tmp_path):
  _write_ade(tmp_path / 'A', split='validation', prefix='ADE_val', n=1)
  (e,) = ade20k.list_examples(tmp_path / 'A', 'val')
  assert e['id'] == 'ADE_val_00000001'


def test_bad_layouts(tmp_path):
  root = tmp_path / 'ADEChallengeData2016'
  with layout_error('ADEChallengeData2016'):
    ade20k.list_examples(root, 'training')
  _write_ade(root)
  with layout_error('annotations/validation'):
    ade20k.list_examples(root, 'validation')
  (root / 'annotations/training/ADE_train_00000002.png').unlink()
  with layout_error('ADE_train_00000002.png'):
    ade20k.list_examples(root, 'training')


def test_corrupt_annotation(tmp_path):
  root = tmp_path / 'ADEChallengeData2016'
  _write_ade(root, n=1)
  (e,) = ade20k.list_examples(root, 'training')
  blob = open(e['label'], 'rb').read()
  open(e['label'], 'wb').write(blob[:len(blob) // 3])
  with layout_error('ADE_train_00000001.png'):
    ade20k.read_example(e)
  open(e['image'], 'wb').write(b'\xff\xd8\xff garbage')
  with layout_error('ADE_train_00000001.jpg'):
    ade20k.read_example(e)
