"""PASCAL VOC 2012 segmentation and the SBD "train_aug" extension, as published.

`SegmentationClass/*.png` are palette PNGs whose index is the class (0..20, 255 = void).
SBD `cls/*.mat` hold a struct `GTcls` whose field `Segmentation` is the uint8 class map (0..20).
train_aug = (VOC train | SBD train | SBD val) - VOC val (10,582 ids with the full data); ids in
VOC train keep their VOC PNG label, the others use the SBD .mat label (mmseg's convention).
Images always come from VOC2012/JPEGImages. Values outside 0..20 become 255.
"""

from __future__ import annotations

import os

import numpy as np

from jaxseg.data.formats import common
from jaxseg.data.formats.common import DatasetLayoutError

EXPECTED_LAYOUT = """\
<root>/                                   (VOCdevkit/)
  VOC2012/JPEGImages/<id>.jpg
  VOC2012/SegmentationClass/<id>.png      'P' palette PNG, index = class 0..20, 255 = void
  VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
  VOCaug/dataset/cls/<id>.mat             SBD, struct GTcls.Segmentation uint8 (train_aug only)
  VOCaug/dataset/{train,val}.txt          SBD split lists (train_aug only)"""

SPLITS = ('train', 'val', 'trainval', 'train_aug')

CLASS_NAMES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
               'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
NUM_CLASSES = 21


def _voc_palette(n: int = 256) -> np.ndarray:
  """The VOC colour map: bits of the class index spread over R, G, B from the top bit down."""
  pal = np.zeros((n, 3), np.uint8)
  for i in range(n):
    c, r, g, b = i, 0, 0, 0
    for k in range(8):
      r |= ((c >> 0) & 1) << (7 - k)
      g |= ((c >> 1) & 1) << (7 - k)
      b |= ((c >> 2) & 1) << (7 - k)
      c >>= 3
    pal[i] = (r, g, b)
  return pal


PALETTE = _voc_palette()[:NUM_CLASSES]
_LUT = common.make_lut({k: k for k in range(NUM_CLASSES)})


def _voc_dir(root):
  return os.path.join(os.fspath(root), 'VOC2012')


def _sbd_dir(root):
  return os.path.join(os.fspath(root), 'VOCaug', 'dataset')


def _voc_ids(root, split):
  return common.read_id_list(
      os.path.join(_voc_dir(root), 'ImageSets', 'Segmentation', f'{split}.txt'), EXPECTED_LAYOUT)


def list_examples(root, split: str) -> list[dict]:
  """[{'id', 'image', 'label', 'label_format': 'png' | 'sbd_mat'}] for train / val / trainval
  (VOC lists, in list order) or train_aug (sorted ids)."""
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  root = common.require_dir(root, EXPECTED_LAYOUT)
  voc = common.require_dir(_voc_dir(root), EXPECTED_LAYOUT)
  img_dir = common.require_dir(os.path.join(voc, 'JPEGImages'), EXPECTED_LAYOUT)
  seg_dir = common.require_dir(os.path.join(voc, 'SegmentationClass'), EXPECTED_LAYOUT)
  if split != 'train_aug':
    ids = [(i, 'png') for i in _voc_ids(root, split)]
  else:
    sbd = common.require_dir(_sbd_dir(root), EXPECTED_LAYOUT)
    common.require_dir(os.path.join(sbd, 'cls'), EXPECTED_LAYOUT)
    voc_train = set(_voc_ids(root, 'train'))
    voc_val = set(_voc_ids(root, 'val'))
    sbd_all = (set(common.read_id_list(os.path.join(sbd, 'train.txt'), EXPECTED_LAYOUT))
               | set(common.read_id_list(os.path.join(sbd, 'val.txt'), EXPECTED_LAYOUT)))
    ids = [(i, 'png' if i in voc_train else 'sbd_mat')
           for i in sorted((voc_train | sbd_all) - voc_val)]
  entries = []
  for i, fmt in ids:
    label = (os.path.join(seg_dir, f'{i}.png') if fmt == 'png'
             else os.path.join(_sbd_dir(root), 'cls', f'{i}.mat'))
    entries.append({'id': i, 'label_format': fmt,
                    'image': common.require_file(os.path.join(img_dir, f'{i}.jpg'),
                                                 EXPECTED_LAYOUT),
                    'label': common.require_file(label, EXPECTED_LAYOUT)})
  return entries


def read_sbd_cls(path) -> np.ndarray:
  """An SBD cls/*.mat -> (H, W) uint8 class map (GTcls.Segmentation)."""
  mat = common.load_mat_v5(path, EXPECTED_LAYOUT, ('GTcls',), squeeze_me=True,
                           struct_as_record=False)
  seg = getattr(mat['GTcls'], 'Segmentation', None)
  if seg is None:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, 'GTcls has no field Segmentation in')
  seg = np.asarray(seg)
  if seg.ndim != 2 or not np.issubdtype(seg.dtype, np.integer):
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'GTcls.Segmentation is {seg.shape} {seg.dtype}, expected a 2-D '
                             'integer map, in')
  return seg


def read_example(entry: dict) -> dict:
  """Returns 'image' (H, W, 3) uint8 RGB and 'label' (H, W) uint8 (0..20, 255 = void)."""
  image = common.read_rgb(entry['image'], EXPECTED_LAYOUT)
  if entry.get('label_format', 'png') == 'sbd_mat':
    raw = read_sbd_cls(entry['label'])
  else:
    raw = common.read_index_png(entry['label'], EXPECTED_LAYOUT)
  if raw.shape != image.shape[:2]:
    raise DatasetLayoutError(entry['label'], EXPECTED_LAYOUT,
                             f'label size {raw.shape[::-1]} differs from the image '
                             f'{image.shape[1::-1]} for')
  raw = np.asarray(raw, np.int64)
  label = np.where((raw >= 0) & (raw < 256), _LUT[np.clip(raw, 0, 255)], 255)
  return {'image': image, 'label': label.astype(np.uint8)}
