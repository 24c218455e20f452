"""Cityscapes (leftImg8bit, gtFine, disparity, camera) as published.

Labels: `*_gtFine_labelIds.png` (ids 0..33) -> the 19 trainIds of cityscapesscripts
`helpers/labels.py`; every other id -> 255.
Depth: `*_disparity.png` is 16-bit, p = 0 invalid, disparity d = (p - 1) / 256 px; metric depth
= baseline * fx / d (metres; baseline in metres and fx in pixels from `*_camera.json`). p = 1
means d = 0 (infinitely far) and is treated as invalid too.
"""

from __future__ import annotations

import json
import os

import numpy as np

from jaxseg.data.derived import contours_from_labels, normals_from_depth
from jaxseg.data.formats import common
from jaxseg.data.formats.common import DatasetLayoutError

EXPECTED_LAYOUT = """\
<root>/
  leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png   RGB 8-bit
  gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png    'L' 8-bit ids 0..33
  disparity/{train,val,test}/<city>/<city>_<seq>_<frame>_disparity.png       16-bit (depth only)
  camera/{train,val,test}/<city>/<city>_<seq>_<frame>_camera.json            (depth only)
      {"extrinsic": {"baseline": m, ...}, "intrinsic": {"fx": px, "fy", "u0", "v0"}}"""

SPLITS = ('train', 'val', 'test')

CLASS_NAMES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
               'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck',
               'bus', 'train', 'motorcycle', 'bicycle')

# Colours of the 19 train classes (cityscapesscripts labels.py colours), indexed by trainId.
PALETTE = np.array([
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32)], np.uint8)

LABEL_ID_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
                        23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LABEL_ID_LUT = common.make_lut(LABEL_ID_TO_TRAIN_ID)  # (256,) uint8, unlisted ids -> 255


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
  """(H, W) Cityscapes label ids -> (H, W) uint8 trainIds (0..18, 255 = ignore)."""
  return common.map_labels(np.asarray(label_ids), LABEL_ID_LUT)


def list_examples(root, split: str, *, labels: bool = True, depth: bool = False) -> list[dict]:
  """Lists the frames of `split` ('train', 'val' or 'test').

  Each entry: {'id': '<city>_<seq>_<frame>', 'city', 'image': path, and with `labels`
  'label': labelIds path, with `depth` 'disparity' and 'camera' paths}. Every listed image must
  have all requested companion files, otherwise DatasetLayoutError names the missing one.
  """
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  root = common.require_dir(root, EXPECTED_LAYOUT)
  suffix = '_leftImg8bit.png'
  image_dir = os.path.join(root, 'leftImg8bit', split)
  entries = []
  for image in common.list_files(image_dir, suffix, EXPECTED_LAYOUT, recursive=True):
    city = os.path.basename(os.path.dirname(image))
    frame = os.path.basename(image)[:-len(suffix)]
    entry = {'id': frame, 'city': city, 'image': image}
    if labels:
      entry['label'] = common.require_file(
          os.path.join(root, 'gtFine', split, city, f'{frame}_gtFine_labelIds.png'),
          EXPECTED_LAYOUT)
    if depth:
      entry['disparity'] = common.require_file(
          os.path.join(root, 'disparity', split, city, f'{frame}_disparity.png'),
          EXPECTED_LAYOUT)
      entry['camera'] = common.require_file(
          os.path.join(root, 'camera', split, city, f'{frame}_camera.json'),
          EXPECTED_LAYOUT)
    entries.append(entry)
  return entries


def read_camera(path) -> dict:
  """Reads `*_camera.json` -> {'baseline': metres, 'fx', 'fy', 'u0', 'v0': pixels}."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  try:
    with open(path, encoding='utf-8') as f:
      cam = json.load(f)
    out = {'baseline': float(cam['extrinsic']['baseline'])}
    for k in ('fx', 'fy', 'u0', 'v0'):
      out[k] = float(cam['intrinsic'][k])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'corrupt camera file (need extrinsic.baseline and '
                             f'intrinsic.fx/fy/u0/v0; {type(e).__name__}: {e})') from e
  if not (out['baseline'] > 0 and out['fx'] > 0):
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, 'non-positive baseline or fx in')
  return out


def read_disparity(path) -> np.ndarray:
  """`*_disparity.png` -> (H, W) float32 disparity in pixels, 0 where p <= 1 (invalid)."""
  p = common.read_index_png(path, EXPECTED_LAYOUT, allow_16bit=True).astype(np.float64)
  return np.where(p > 1, (p - 1.0) / 256.0, 0.0).astype(np.float32)


def disparity_to_depth(disparity: np.ndarray, baseline: float, fx: float) -> np.ndarray:
  """Depth in metres = baseline * fx / disparity; 0 where disparity <= 0."""
  d = np.asarray(disparity, np.float64)
  safe = np.where(d > 0, d, 1.0)
  return np.where(d > 0, baseline * fx / safe, 0.0).astype(np.float32)


def read_example(entry: dict) -> dict:
  """Reads one frame.

  Returns 'image' (H, W, 3) uint8 RGB; with a label path 'label' (H, W) uint8 trainIds
  (255 = ignore); with disparity/camera paths 'disparity' (H, W) float32 px, 'depth' (H, W)
  float32 metres (0 = invalid), 'valid' (H, W) bool and the derived 'normals' (H, W, 3) and,
  with labels, 'contours' (H, W) (`derived_targets`).
  """
  out = {'image': common.read_rgb(entry['image'], EXPECTED_LAYOUT)}
  h, w = out['image'].shape[:2]
  if entry.get('label'):
    ids = common.read_index_png(entry['label'], EXPECTED_LAYOUT)
    _check_size(entry['label'], ids, (h, w))
    out['label'] = label_ids_to_train_ids(ids)
  if entry.get('disparity'):
    cam = read_camera(entry['camera'])
    disp = read_disparity(entry['disparity'])
    _check_size(entry['disparity'], disp, (h, w))
    out['disparity'] = disp
    out['depth'] = disparity_to_depth(disp, cam['baseline'], cam['fx'])
    out['valid'] = out['depth'] > 0
    out.update(derived_targets(out, cam))
  return out


def camera_intrinsics(cam: dict) -> dict:
  """`read_camera` output -> {fx, fy, cx, cy} in 1-based pixels (`jaxseg.data.derived`)."""
  return {'fx': cam['fx'], 'fy': cam['fy'], 'cx': cam['u0'] + 1.0, 'cy': cam['v0'] + 1.0}


def derived_targets(example: dict, cam: dict) -> dict:
  """PAD-Net's intermediate targets Cityscapes does not ship (`jaxseg.data.derived`):
  'normals' (H, W, 3) float32 from the metric depth and the frame's camera (zero = undefined:
  no depth, e.g. sky and stereo holes) and, with labels, 'contours' (H, W) uint8 from the
  trainIds."""
  normals, _ = normals_from_depth(example['depth'], camera_intrinsics(cam))
  out = {'normals': normals}
  if 'label' in example:
    out['contours'] = contours_from_labels(example['label'])
  return out


def _check_size(path, arr, hw):
  if arr.shape[:2] != tuple(hw):
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'size {arr.shape[1]}x{arr.shape[0]} differs from the image '
                             f'{hw[1]}x{hw[0]} for')
