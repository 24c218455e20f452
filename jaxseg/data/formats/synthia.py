"""SYNTHIA-RAND-CITYSCAPES as published.

`GT/LABELS/*.png` are 16-bit 3-channel PNGs: the class id is in R, the instance id in G. Pillow
would silently reduce them to 8 bits (ids -> 0), so they are decoded with
`png.read_png16_rgb` at full 16-bit depth.

Class protocols (source ids from the SYNTHIA README as used by DAFormer / DADA / ADVENT):
  19: the Cityscapes trainIds (terrain, truck and train never occur in SYNTHIA);
  16: the same source ids re-indexed 0..15 (the 19 classes minus terrain, truck, train);
  13: the 16 minus wall, fence and pole (the AdaptSegNet / Chen et al. 2017 evaluation).
Every other id -> 255.
"""

from __future__ import annotations

import os

import numpy as np

from jaxseg.data.formats import cityscapes, common, png
from jaxseg.data.formats.common import DatasetLayoutError

EXPECTED_LAYOUT = """\
<root>/                              (RAND_CITYSCAPES/)
  RGB/0000000.png ... 0009399.png    RGB 8-bit, 1280x760
  GT/LABELS/0000000.png ...          16-bit 3-channel PNG, class id in R, instance id in G
  (GT/COLOR/, Depth/ are not read)"""

SPLITS = ('all', 'train')

# SYNTHIA id -> Cityscapes trainId.
SYNTHIA_TO_TRAIN_ID = {3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 16: 9, 1: 10,
                       10: 11, 17: 12, 8: 13, 18: 14, 19: 15, 20: 16, 12: 17, 11: 18}

CLASS_NAMES_19 = cityscapes.CLASS_NAMES
_TRAIN_IDS_16 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)
_TRAIN_IDS_13 = (0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)
CLASS_NAMES_16 = tuple(CLASS_NAMES_19[t] for t in _TRAIN_IDS_16)
CLASS_NAMES_13 = tuple(CLASS_NAMES_19[t] for t in _TRAIN_IDS_13)
CLASS_NAMES = CLASS_NAMES_16


def _protocol(train_ids):
  src = {t: s for s, t in SYNTHIA_TO_TRAIN_ID.items()}
  return {src[t]: k for k, t in enumerate(train_ids)}


SYNTHIA_TO_16 = _protocol(_TRAIN_IDS_16)
SYNTHIA_TO_13 = _protocol(_TRAIN_IDS_13)
LUTS = {19: common.make_lut(SYNTHIA_TO_TRAIN_ID, 65536),
        16: common.make_lut(SYNTHIA_TO_16, 65536),
        13: common.make_lut(SYNTHIA_TO_13, 65536)}
CLASS_NAMES_BY_PROTOCOL = {19: CLASS_NAMES_19, 16: CLASS_NAMES_16, 13: CLASS_NAMES_13}
PALETTES = {19: cityscapes.PALETTE, 16: cityscapes.PALETTE[list(_TRAIN_IDS_16)],
            13: cityscapes.PALETTE[list(_TRAIN_IDS_13)]}


def list_examples(root, split: str = 'all', *, num_classes: int = 16) -> list[dict]:
  """All frames: [{'id': '0000000', 'image', 'label', 'num_classes'}].

  `num_classes` (16, 13 or 19) selects the class protocol applied by `read_example`.
  """
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  if num_classes not in LUTS:
    raise ValueError(f'num_classes must be one of {sorted(LUTS)}, got {num_classes}')
  root = common.require_dir(root, EXPECTED_LAYOUT)
  label_dir = common.require_dir(os.path.join(root, 'GT', 'LABELS'), EXPECTED_LAYOUT)
  entries = []
  for image in common.list_files(os.path.join(root, 'RGB'), '.png', EXPECTED_LAYOUT):
    name = os.path.basename(image)
    label = common.require_file(os.path.join(label_dir, name), EXPECTED_LAYOUT)
    entries.append({'id': name[:-4], 'image': image, 'label': label,
                    'num_classes': num_classes})
  return entries


def read_label_ids(path) -> np.ndarray:
  """Raw SYNTHIA class ids: the R channel of a GT/LABELS PNG, (H, W) uint16."""
  return png.read_png16_rgb(path, EXPECTED_LAYOUT, channels=(0,))[..., 0]


def map_ids(ids: np.ndarray, num_classes: int = 16) -> np.ndarray:
  """SYNTHIA ids -> (H, W) uint8 labels of the 19/16/13-class protocol (255 = ignore)."""
  return LUTS[num_classes][np.asarray(ids, np.uint16)]


def read_example(entry: dict) -> dict:
  """Returns 'image' (H, W, 3) uint8 RGB and 'label' (H, W) uint8 (255 = ignore)."""
  image = common.read_rgb(entry['image'], EXPECTED_LAYOUT)
  ids = read_label_ids(entry['label'])
  if ids.shape != image.shape[:2]:
    raise DatasetLayoutError(entry['label'], EXPECTED_LAYOUT,
                             f'label size {ids.shape[1]}x{ids.shape[0]} differs from the '
                             f'image {image.shape[1]}x{image.shape[0]} for')
  return {'image': image, 'label': map_ids(ids, entry.get('num_classes', 16))}
