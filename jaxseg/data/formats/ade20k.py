"""ADE20K SceneParsing (ADEChallengeData2016) as published.

Annotations are single-channel 8-bit PNGs with values 0..150, where 0 is "other / background",
not one of the 150 classes. Labels are reduced ("reduce_zero_label"): 0 -> 255 (ignored),
k -> k - 1 for k in 1..150; anything above 150 -> 255.
"""

from __future__ import annotations

import os

import numpy as np

from jaxseg.data.formats import common
from jaxseg.data.formats.common import DatasetLayoutError

EXPECTED_LAYOUT = """\
<root>/                                       (ADEChallengeData2016/)
  images/{training,validation}/ADE_{train,val}_XXXXXXXX.jpg
  annotations/{training,validation}/ADE_{train,val}_XXXXXXXX.png   'L' 8-bit, 0..150 (0 = other)"""

SPLITS = {'training': 'training', 'train': 'training', 'validation': 'validation',
          'val': 'validation'}

# The 150 categories (first name of each objectInfo150.txt entry), in label order 1..150.
CLASS_NAMES = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed', 'windowpane', 'grass',
    'cabinet', 'sidewalk', 'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain',
    'chair', 'car', 'water', 'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field',
    'armchair', 'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp', 'bathtub', 'railing',
    'cushion', 'base', 'box', 'column', 'signboard', 'chest of drawers', 'counter', 'sand', 'sink',
    'skyscraper', 'fireplace', 'refrigerator', 'grandstand', 'path', 'stairs', 'runway', 'case',
    'pool table', 'pillow', 'screen door', 'stairway', 'river', 'bridge', 'bookcase', 'blind',
    'coffee table', 'toilet', 'flower', 'book', 'hill', 'bench', 'countertop', 'stove', 'palm',
    'kitchen island', 'computer', 'swivel chair', 'boat', 'bar', 'arcade machine', 'hovel', 'bus',
    'towel', 'light', 'truck', 'tower', 'chandelier', 'awning', 'streetlight', 'booth',
    'television receiver', 'airplane', 'dirt track', 'apparel', 'pole', 'land', 'bannister',
    'escalator', 'ottoman', 'bottle', 'buffet', 'poster', 'stage', 'van', 'ship', 'fountain',
    'conveyer belt', 'canopy', 'washer', 'plaything', 'swimming pool', 'stool', 'barrel',
    'basket', 'waterfall', 'tent', 'bag', 'minibike', 'cradle', 'oven', 'ball', 'food', 'step',
    'tank', 'trade name', 'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen',
    'blanket', 'sculpture', 'hood', 'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan',
    'pier', 'crt screen', 'plate', 'monitor', 'bulletin board', 'shower', 'radiator', 'glass',
    'clock', 'flag')
NUM_CLASSES = 150
LUT = common.make_lut({k: k - 1 for k in range(1, NUM_CLASSES + 1)})


def reduce_zero_label(ann: np.ndarray) -> np.ndarray:
  """(H, W) annotation 0..150 -> (H, W) uint8 labels 0..149, 255 = ignore."""
  return common.map_labels(np.asarray(ann), LUT)


def list_examples(root, split: str) -> list[dict]:
  """[{'id': 'ADE_train_00000001', 'image', 'label'}] for 'training'/'train' or
  'validation'/'val'; every image needs its annotation."""
  if split not in SPLITS:
    raise ValueError(f'split must be one of {sorted(SPLITS)}, got {split!r}')
  sub = SPLITS[split]
  root = common.require_dir(root, EXPECTED_LAYOUT)
  ann_dir = common.require_dir(os.path.join(root, 'annotations', sub), EXPECTED_LAYOUT)
  entries = []
  for image in common.list_files(os.path.join(root, 'images', sub), '.jpg', EXPECTED_LAYOUT):
    name = os.path.basename(image)[:-4]
    label = common.require_file(os.path.join(ann_dir, name + '.png'), EXPECTED_LAYOUT)
    entries.append({'id': name, 'image': image, 'label': label})
  return entries


def read_example(entry: dict) -> dict:
  """Returns 'image' (H, W, 3) uint8 RGB and 'label' (H, W) uint8 (0..149, 255 = ignore)."""
  image = common.read_rgb(entry['image'], EXPECTED_LAYOUT)
  ann = common.read_index_png(entry['label'], EXPECTED_LAYOUT)
  if ann.shape != image.shape[:2]:
    raise DatasetLayoutError(entry['label'], EXPECTED_LAYOUT,
                             f'annotation size {ann.shape[::-1]} differs from the image '
                             f'{image.shape[1::-1]} for')
  return {'image': image, 'label': reduce_zero_label(ann)}
