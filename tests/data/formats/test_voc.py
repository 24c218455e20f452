"""PASCAL VOC 2012 + SBD train_aug reader on format-exact fixtures."""

import numpy as np
import pytest
import scipy.io
from PIL import Image

from jaxseg.data.formats import voc

from ._util import layout_error

H, W = 10, 14
VOC_TRAIN = ['2007_000032', '2007_000039', '2008_000008']
VOC_VAL = ['2007_000033', '2008_000009']
SBD_TRAIN = ['2007_000032', '2008_000100', '2008_000009', '2009_000001']
SBD_VAL = ['2008_000200', '2007_000033']


def _palette_png(path, idx):
  idx = np.ascontiguousarray(idx, np.uint8)
  im = Image.frombytes('P', (idx.shape[1], idx.shape[0]), idx.tobytes())
  im.putpalette(voc._voc_palette().ravel().tolist())  # pylint: disable=protected-access
  im.save(path)


def _write_voc(root):
  rng = np.random.default_rng(0)
  v = root / 'VOC2012'
  for d in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
    (v / d).mkdir(parents=True)
  sbd = root / 'VOCaug' / 'dataset'
  (sbd / 'cls').mkdir(parents=True)
  labels = {}
  all_ids = sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL))
  for i in all_ids:
    Image.fromarray(rng.integers(0, 256, (H, W, 3)).astype(np.uint8)).save(
        v / 'JPEGImages' / f'{i}.jpg', quality=95)
  for i in VOC_TRAIN + VOC_VAL:
    lab = rng.permutation(np.resize(np.r_[np.arange(21), 255, 255, 254], H * W)).reshape(H, W)
    _palette_png(v / 'SegmentationClass' / f'{i}.png', lab)
    labels[('png', i)] = lab.astype(np.uint8)
  for i in SBD_TRAIN + SBD_VAL:
    seg = rng.integers(0, 21, (H, W)).astype(np.uint8)
    scipy.io.savemat(sbd / 'cls' / f'{i}.mat', {'GTcls': {
        'Segmentation': seg, 'Boundaries': np.zeros((20, 1), dtype=object),
        'CategoriesPresent': np.unique(seg)[:, None]}})
    labels[('sbd_mat', i)] = seg
  seg_sets = v / 'ImageSets' / 'Segmentation'
  (seg_sets / 'train.txt').write_text('\n'.join(VOC_TRAIN) + '\n')
  (seg_sets / 'val.txt').write_text('\n'.join(VOC_VAL) + '\n')
  (seg_sets / 'trainval.txt').write_text('\n'.join(VOC_TRAIN + VOC_VAL) + '\n')
  (sbd / 'train.txt').write_text('\n'.join(SBD_TRAIN) + '\n')
  (sbd / 'val.txt').write_text('\n'.join(SBD_VAL) + '\n')
  return labels


@pytest.fixture
def vocroot(tmp_path):
  root = tmp_path / 'VOCdevkit'
  return root, _write_voc(root)


def test_palette_and_names():
  assert len(voc.CLASS_NAMES) == 21 and voc.PALETTE.shape == (21, 3)
  assert voc.PALETTE[0].tolist() == [0, 0, 0] and voc.PALETTE[1].tolist() == [128, 0, 0]
  assert voc.PALETTE[15].tolist() == [192, 128, 128]   # person


@pytest.mark.parametrize('split,ids', [('train', VOC_TRAIN), ('val', VOC_VAL),
                                       ('trainval', VOC_TRAIN + VOC_VAL)])
def test_voc_splits(vocroot, split, ids):
  root, labels = vocroot
  entries = voc.list_examples(root, split)
  assert [e['id'] for e in entries] == ids
  for e in entries:
    ex = voc.read_example(e)
    ref = labels[('png', e['id'])]
    expected = np.where(ref <= 20, ref, 255)
    np.testing.assert_array_equal(ex['label'], expected)
    assert ex['image'].shape == (H, W, 3) and ex['image'].dtype == np.uint8
    np.testing.assert_array_equal(ex['image'],
                                  np.asarray(Image.open(e['image']).convert('RGB')))


def test_train_aug(vocroot):
  root, labels = vocroot
  entries = voc.list_examples(root, 'train_aug')
  expected_ids = sorted((set(VOC_TRAIN) | set(SBD_TRAIN) | set(SBD_VAL)) - set(VOC_VAL))
  assert [e['id'] for e in entries] == expected_ids
  for e in entries:
    fmt = 'png' if e['id'] in VOC_TRAIN else 'sbd_mat'
    assert e['label_format'] == fmt
    ref = labels[(fmt, e['id'])]
    np.testing.assert_array_equal(voc.read_example(e)['label'], np.where(ref <= 20, ref, 255))


def test_missing_pieces(vocroot):
  root, _ = vocroot
  with pytest.raises(ValueError):
    voc.list_examples(root, 'test')
  png = root / 'VOC2012/SegmentationClass/2007_000039.png'
  blob = png.read_bytes()
  png.unlink()
  with layout_error('SegmentationClass/2007_000039.png'):
    voc.list_examples(root, 'train')
  png.write_bytes(blob)
  (root / 'VOCaug/dataset/cls/2009_000001.mat').unlink()
  with layout_error('cls/2009_000001.mat'):
    voc.list_examples(root, 'train_aug')
  (root / 'VOCaug/dataset/val.txt').unlink()
  with layout_error('VOCaug/dataset/val.txt'):
    voc.list_examples(root, 'train_aug')
  (root / 'VOC2012/ImageSets/Segmentation/val.txt').unlink()
  with layout_error('Segmentation/val.txt'):
    voc.list_examples(root, 'val')
  (root / 'VOC2012/JPEGImages/2007_000032.jpg').unlink()
  with layout_error('JPEGImages/2007_000032.jpg'):
    voc.list_examples(root, 'train')


def test_bad_sbd_mat_and_png(vocroot):
  root, _ = vocroot
  entries = {e['id']: e for e in voc.list_examples(root, 'train_aug')}
  e = entries['2009_000001']
  scipy.io.savemat(e['label'], {'Segmentation': np.zeros((H, W), np.uint8)})
  with layout_error(r"GTcls.*2009_000001.mat"):
    voc.read_example(e)
  scipy.io.savemat(e['label'], {'GTcls': {'Boundaries': np.zeros((2, 2))}})
  with layout_error('Segmentation.*2009_000001.mat'):
    voc.read_example(e)
  open(e['label'], 'wb').write(b'MATLAB 5.0 garbage')
  with layout_error('2009_000001.mat'):
    voc.read_example(e)
  e = entries['2007_000032']
  blob = open(e['label'], 'rb').read()
  open(e['label'], 'wb').write(blob[:len(blob) // 2])
  with layout_error('2007_000032.png'):
    voc.read_example(e)
  Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(e['label'])
  with layout_error('single-channel.*2007_000032.png'):
    voc.read_example(e)
