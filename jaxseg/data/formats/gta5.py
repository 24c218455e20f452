"""GTA5 (Playing for Data, Richter et al. 2016) as published.

`labels/NNNNN.png` are 8-bit palette PNGs whose palette *index* is the Cityscapes label id
(0..33); they are mapped to the 19 Cityscapes trainIds (others -> 255). A few frames reportedly
have a label whose size differs from the image; such labels are resized with nearest-neighbour
(PIL NEAREST, pixel-centre sampling) to the image size.
"""

from __future__ import annotations

import os

from jaxseg.data.formats import cityscapes, common

EXPECTED_LAYOUT = """\
<root>/                        (e.g. GTA5/)
  images/00001.png ... 24966.png   RGB 8-bit, mostly 1914x1052
  labels/00001.png ... 24966.png   'P' 8-bit, palette index = Cityscapes label id 0..33"""

# The domain-adaptation protocol trains on all 24,966 frames; the official split.mat is not used.
SPLITS = ('all', 'train')

CLASS_NAMES = cityscapes.CLASS_NAMES
PALETTE = cityscapes.PALETTE
LABEL_ID_TO_TRAIN_ID = cityscapes.LABEL_ID_TO_TRAIN_ID


def list_examples(root, split: str = 'all') -> list[dict]:
  """All frames (split 'all' or its alias 'train'): [{'id': 'NNNNN', 'image', 'label'}].

  Every image must have a label of the same file name, otherwise DatasetLayoutError.
  """
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  root = common.require_dir(root, EXPECTED_LAYOUT)
  common.require_dir(os.path.join(root, 'labels'), EXPECTED_LAYOUT)
  entries = []
  for image in common.list_files(os.path.join(root, 'images'), '.png', EXPECTED_LAYOUT):
    name = os.path.basename(image)
    label = common.require_file(os.path.join(root, 'labels', name), EXPECTED_LAYOUT)
    entries.append({'id': name[:-4], 'image': image, 'label': label})
  return entries


def read_example(entry: dict) -> dict:
  """Returns 'image' (H, W, 3) uint8 RGB and 'label' (H, W) uint8 trainIds (255 = ignore)."""
  image = common.read_rgb(entry['image'], EXPECTED_LAYOUT)
  ids = common.read_index_png(entry['label'], EXPECTED_LAYOUT)
  if ids.shape != image.shape[:2]:
    ids = common.resize_nearest(ids, image.shape[:2])
  return {'image': image, 'label': cityscapes.label_ids_to_train_ids(ids)}

