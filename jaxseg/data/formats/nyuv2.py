"""NYU Depth v2, labelled subset (1449 frames, 480x640), as published.

`nyu_depth_v2_labeled.mat` is MATLAB v7.3 (HDF5), read with h5py. MATLAB is column-major, so
h5py shows every axis reversed: images (N, 3, W, H) -> frame i is images[i].transpose(2, 1, 0);
depths/labels (N, W, H) -> frame i is depths[i].T.

Labels: raw labels 1..894 (0 = unlabelled) -> 40 classes with classMapping40.mat `mapClass`
(Gupta et al. 2013), stored 0-based: label40 - 1 in 0..39, unlabelled -> 255. The 13-class
variant maps the 40 classes through class13Mapping.mat `classMapping13.labels13` (0..12, 255).

Derived targets (the PAD-Net paper infers both from the ground truth, without giving the
algorithm; this is jaxseg's documented choice):
- normals: back-project every pixel with the NYU RGB intrinsics (`NYU_INTRINSICS`, 1-based pixel
  coordinates as in the NYU toolbox): P(u, v) = Z * ((u - cx) / fx, (v - cy) / fy, 1). The
  tangents are the central differences dP/du and dP/dv (one-sided at the image border,
  numpy.gradient) and n = normalise(dP/dv x dP/du), flipped where needed so that n . P <= 0 (it
  faces the camera; camera frame x right, y down, z forward). Normals are (0, 0, 0) wherever the
  pixel or a neighbour used by the differences has no valid depth.
- contours: 1 where any 4-neighbour has a different (mapped) label, void included; 0 elsewhere.
  Both sides of a boundary are marked.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from jaxseg.data.formats import common
from jaxseg.data.derived import contours_from_labels, normals_from_depth  # noqa: F401 (API)
from jaxseg.data.formats.common import DatasetLayoutError

EXPECTED_LAYOUT = """\
<root>/
  nyu_depth_v2_labeled.mat   MATLAB v7.3 (HDF5); h5py shapes: images (1449, 3, 640, 480) uint8,
                             depths (1449, 640, 480) float32 metres, labels (1449, 640, 480) 0..894
  splits.mat                 MATLAB v5: trainNdxs (795, 1), testNdxs (654, 1), 1-based
  classMapping40.mat         MATLAB v5: mapClass (1, 894) values 1..40, className (1, 40)
  class13Mapping.mat         MATLAB v5: classMapping13.labels13 (1, 40) values 1..13 (13 classes)"""

MAT_NAME = 'nyu_depth_v2_labeled.mat'
NUM_FRAMES = 1449
SPLITS = ('train', 'test', 'all', 'dsr_train', 'dsr_test')
DSR_NUM_TRAIN = 1000  # DKN/FDSR depth-SR protocol: first 1000 frames train, last 449 test.

# Kinect RGB camera intrinsics of the NYU Depth v2 toolbox (pixels, 1-based coordinates).
NYU_INTRINSICS = {'fx': 518.857901, 'fy': 519.469611, 'cx': 325.582449, 'cy': 253.736166}

CLASS_NAMES_40 = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window', 'bookshelf',
    'picture', 'counter', 'blinds', 'desk', 'shelves', 'curtain', 'dresser', 'pillow', 'mirror',
    'floor mat', 'clothes', 'ceiling', 'books', 'refridgerator', 'television', 'paper', 'towel',
    'shower curtain', 'box', 'whiteboard', 'person', 'night stand', 'toilet', 'sink', 'lamp',
    'bathtub', 'bag', 'otherstructure', 'otherfurniture', 'otherprop')
CLASS_NAMES_13 = ('bed', 'books', 'ceiling', 'chair', 'floor', 'furniture', 'objects', 'picture',
                  'sofa', 'table', 'tv', 'wall', 'window')
CLASS_NAMES = CLASS_NAMES_40


def _stamp(path: str) -> tuple:
  st = os.stat(path)
  return st.st_mtime_ns, st.st_size


def _path(root, name):
  return os.path.join(os.fspath(root), name)


@functools.lru_cache(maxsize=8)
def _split_indices(path: str, stamp: tuple) -> dict:
  del stamp  # cache key only
  mat = common.load_mat_v5(path, EXPECTED_LAYOUT, ('trainNdxs', 'testNdxs'))
  return {'train': np.asarray(mat['trainNdxs']).ravel().astype(np.int64),
          'test': np.asarray(mat['testNdxs']).ravel().astype(np.int64)}


def read_splits(path) -> dict[str, np.ndarray]:
  """splits.mat -> {'train': 1-based indices (795,), 'test': 1-based indices (654,)}."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  return {k: v.copy() for k, v in _split_indices(path, _stamp(path)).items()}


@functools.lru_cache(maxsize=8)
def _mapping40(path: str, stamp: tuple) -> tuple[np.ndarray, tuple[str, ...]]:
  del stamp
  mat = common.load_mat_v5(path, EXPECTED_LAYOUT, ('mapClass', 'className'))
  m = np.asarray(mat['mapClass']).ravel()
  if m.size != 894 or m.min() < 1 or m.max() > 40:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'mapClass must hold 894 values in 1..40, got {m.size} values '
                             f'in {m.min()}..{m.max()} in')
  return m.astype(np.int64), tuple(common.mat_strings(mat['className']))


def read_class_mapping40(path) -> tuple[np.ndarray, tuple[str, ...]]:
  """classMapping40.mat -> (mapClass (894,) ints 1..40, the 40 class names)."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  m, names = _mapping40(path, _stamp(path))
  return m.copy(), names


@functools.lru_cache(maxsize=8)
def _mapping13(path: str, stamp: tuple) -> np.ndarray:
  del stamp
  mat = common.load_mat_v5(path, EXPECTED_LAYOUT, ('classMapping13',),
                           squeeze_me=True, struct_as_record=False)
  try:
    m = np.asarray(mat['classMapping13'].labels13).ravel().astype(np.int64)
  except AttributeError as e:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             'classMapping13 has no field labels13 in') from e
  if m.size != 40 or m.min() < 1 or m.max() > 13:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             'classMapping13.labels13 must hold 40 values in 1..13 in')
  return m


def read_class_mapping13(path) -> np.ndarray:
  """class13Mapping.mat -> labels13 (40,) ints 1..13 (40-class k+1 -> 13-class value)."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  return _mapping13(path, _stamp(path)).copy()


def label_lut(map_class: np.ndarray, labels13: np.ndarray | None = None) -> np.ndarray:
  """(895,) uint8 table: raw label 0..894 -> 0-based 40-class (or 13-class) label, 0 -> 255."""
  target = np.asarray(map_class, np.int64)
  if labels13 is not None:
    target = np.asarray(labels13, np.int64)[target - 1]
  return np.concatenate([[255], target - 1]).astype(np.uint8)


def _open_h5(path):
  import h5py  # pylint: disable=import-outside-toplevel

  path = common.require_file(path, EXPECTED_LAYOUT)
  try:
    return h5py.File(path, 'r')
  except OSError as e:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'not a readable MATLAB v7.3 (HDF5) file ({e})') from e


def _check_mat(f, path: str, need_labels: bool) -> int:
  """Checks variables and shapes of the labelled .mat; returns the number of frames."""
  names = ['images', 'depths'] + (['labels'] if need_labels else [])
  missing = [n for n in names if n not in f or not hasattr(f[n], 'shape')]
  if missing:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, f'missing variable(s) {missing} in')
  img = f['images'].shape
  if len(img) != 4 or img[1] != 3:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'images has h5py shape {img}, expected (N, 3, W, H) in')
  for n in names[1:]:
    if f[n].shape != (img[0], img[2], img[3]):
      raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                               f'{n} has h5py shape {f[n].shape}, expected '
                               f'{(img[0], img[2], img[3])} to match images in')
  return img[0]


def list_examples(root, split: str, *, num_classes: int | None = 40) -> list[dict]:
  """Lists frames of `split`.

  Splits: 'train' / 'test' (the official 795 / 654 of splits.mat), 'all', and the depth-SR
  protocol 'dsr_train' (first 1000 frames) / 'dsr_test' (last 449). `num_classes` is 40, 13
  or None (no labels/contours; then no mapping file is needed).
  Entry: {'id': '%04d' 1-based frame, 'index': 0-based index, 'mat', 'num_classes',
  'mapping40', 'mapping13'}.
  """
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  if num_classes not in (40, 13, None):
    raise ValueError(f'num_classes must be 40, 13 or None, got {num_classes}')
  root = common.require_dir(root, EXPECTED_LAYOUT)
  mat = common.require_file(_path(root, MAT_NAME), EXPECTED_LAYOUT)
  entry = {'mat': mat, 'num_classes': num_classes, 'mapping40': None, 'mapping13': None}
  if num_classes:
    entry['mapping40'] = common.require_file(_path(root, 'classMapping40.mat'),
                                             EXPECTED_LAYOUT)
    read_class_mapping40(entry['mapping40'])
  if num_classes == 13:
    entry['mapping13'] = common.require_file(_path(root, 'class13Mapping.mat'),
                                             EXPECTED_LAYOUT)
    read_class_mapping13(entry['mapping13'])
  with _open_h5(mat) as f:
    n = _check_mat(f, mat, need_labels=bool(num_classes))
  if split in ('train', 'test'):
    splits_path = _path(root, 'splits.mat')
    frames = read_splits(splits_path)[split]
    if frames.size and (frames.min() < 1 or frames.max() > n):
      raise DatasetLayoutError(splits_path, EXPECTED_LAYOUT,
                               f'{split} indices outside 1..{n} in')
    indices = frames - 1
  elif split == 'all':
    indices = np.arange(n)
  else:
    if n != NUM_FRAMES:
      raise DatasetLayoutError(mat, EXPECTED_LAYOUT,
                               f'the DSR split needs all {NUM_FRAMES} frames, found {n} in')
    indices = np.arange(DSR_NUM_TRAIN) if split == 'dsr_train' else np.arange(DSR_NUM_TRAIN, n)
  return [dict(entry, id=f'{i + 1:04d}', index=int(i)) for i in indices]


def read_example(entry: dict) -> dict:
  """Reads one frame.

  Returns 'image' (480, 640, 3) uint8 RGB, 'depth' (480, 640) float32 metres (0 = invalid),
  'valid' bool depth mask, 'normals' (480, 640, 3) float32, and with labels 'label' (480, 640)
  uint8 (0-based classes, 255 = void) and 'contours' (480, 640) uint8 0/1.
  """
  mat, i = entry['mat'], int(entry['index'])
  num_classes = entry.get('num_classes')
  with _open_h5(mat) as f:
    n = _check_mat(f, mat, need_labels=bool(num_classes))
    if not 0 <= i < n:
      raise DatasetLayoutError(mat, EXPECTED_LAYOUT, f'frame index {i} outside 0..{n - 1} in')
    try:
      image = np.ascontiguousarray(np.asarray(f['images'][i]).transpose(2, 1, 0))
      depth = np.ascontiguousarray(np.asarray(f['depths'][i], np.float32).T)
      raw = np.ascontiguousarray(np.asarray(f['labels'][i]).T) if num_classes else None
    except (OSError, ValueError, TypeError) as e:
      raise DatasetLayoutError(mat, EXPECTED_LAYOUT, f'unreadable frame {i} ({e}) in') from e
  if image.dtype != np.uint8:
    raise DatasetLayoutError(mat, EXPECTED_LAYOUT, f'images has dtype {image.dtype}, '
                             'expected uint8, in')
  depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
  normals, _ = normals_from_depth(depth, NYU_INTRINSICS)
  out = {'image': image, 'depth': depth, 'valid': depth > 0, 'normals': normals}
  if num_classes:
    map40, _ = read_class_mapping40(entry['mapping40'])
    map13 = read_class_mapping13(entry['mapping13']) if num_classes == 13 else None
    lut = label_lut(map40, map13)
    raw = raw.astype(np.int64)
    if raw.min() < 0 or raw.max() >= lut.size:
      raise DatasetLayoutError(mat, EXPECTED_LAYOUT,
                               f'labels of frame {i} outside 0..894 in')
    out['label'] = lut[raw]
    out['contours'] = contours_from_labels(out['label'])
  return out
