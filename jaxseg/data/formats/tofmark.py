"""ToFMark (Ferstl et al., ICCV 2013): Books, Devil, Shark.

The raw file format of the official zip (PNG / MAT / binary) is NOT verified, so depth files are
read through a pluggable registry: `READERS` maps a name to `reader(path) -> (H, W) float32 depth
in metres (0 = invalid)`. Built-ins: 'png16_mm' (16-bit PNG, millimetres), 'npy_mm' (.npy,
millimetres), 'mat_mm' (.mat v5 or v7.3 with a variable `depth`, millimetres). Register others
with `register_reader(name, fn)` or the `@register_reader(name)` decorator. ToFMark marks invalid
target pixels with values < 0; every non-finite or non-positive value becomes 0.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from jaxseg.data.formats import common
from jaxseg.data.formats.common import DatasetLayoutError

SCENES = ('Books', 'Devil', 'Shark')
# Default file names per scene (a jaxseg convention, not the official zip's; override `files`).
DEFAULT_FILES = {'depth_lr': 'tof.png', 'depth': 'groundtruth.png', 'guide': 'intensity.png'}

EXPECTED_LAYOUT = """\
<root>/{Books,Devil,Shark}/
  tof.png            low-resolution ToF depth (input), read by the selected reader
  groundtruth.png    high-resolution structured-light depth (target), read by the reader
  intensity.png      high-resolution intensity image (guide), 8-bit grey or RGB
(file names and the depth reader are configurable: list_examples(..., files=, reader=))"""

Reader = Callable[[str], np.ndarray]
READERS: dict[str, Reader] = {}


def register_reader(name: str, fn: Reader | None = None):
  """Registers `fn` under `name`; usable as a decorator when fn is omitted."""
  def _register(f):
    READERS[name] = f
    return f
  return _register(fn) if fn is not None else _register


def get_reader(name: str) -> Reader:
  try:
    return READERS[name]
  except KeyError:
    raise KeyError(f'unknown ToFMark reader {name!r}; registered: {sorted(READERS)}') from None


def _clean_mm(arr, path) -> np.ndarray:
  arr = np.asarray(arr)
  if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'expected a 2-D numeric depth map, got {arr.shape} {arr.dtype}:')
  mm = arr.astype(np.float64)
  return np.where(np.isfinite(mm) & (mm > 0), mm / 1000.0, 0.0).astype(np.float32)


@register_reader('png16_mm')
def read_png16_mm(path) -> np.ndarray:
  """16-bit (or 8-bit) greyscale PNG in millimetres -> metres."""
  return _clean_mm(common.read_index_png(path, EXPECTED_LAYOUT, allow_16bit=True), path)


@register_reader('npy_mm')
def read_npy_mm(path) -> np.ndarray:
  """.npy 2-D array in millimetres -> metres."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  try:
    arr = np.load(path, allow_pickle=False)
  except (OSError, ValueError, EOFError) as e:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, f'corrupt .npy ({e})') from e
  return _clean_mm(arr, path)


@register_reader('mat_mm')
def read_mat_mm(path, variable: str = 'depth') -> np.ndarray:
  """.mat (v5 via scipy, v7.3 via h5py; v7.3 axes are transposed back) variable in mm."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  import h5py  # pylint: disable=import-outside-toplevel

  if h5py.is_hdf5(path):
    with h5py.File(path, 'r') as f:
      if variable not in f:
        raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                                 f'missing variable {variable!r} in')
      arr = np.asarray(f[variable]).T
  else:
    arr = common.load_mat_v5(path, EXPECTED_LAYOUT, (variable,))[variable]
  return _clean_mm(arr, path)


def list_examples(root, split: str = 'test', *, reader: str = 'png16_mm',
                  files: dict | None = None) -> list[dict]:
  """The scenes found under root (split 'test' or 'all'; ToFMark is a test set).

  Entry: {'id': scene, 'reader': name, 'depth_lr', 'depth', 'guide' paths}. `files` maps those
  roles to per-scene file names (default DEFAULT_FILES); a role mapped to None is skipped.
  """
  if split not in ('test', 'all'):
    raise ValueError(f"split must be 'test' or 'all', got {split!r}")
  get_reader(reader)
  names = dict(DEFAULT_FILES, **(files or {}))
  root = common.require_dir(root, EXPECTED_LAYOUT)
  scenes = [s for s in SCENES if os.path.isdir(os.path.join(root, s))]
  if not scenes:
    raise DatasetLayoutError(os.path.join(root, SCENES[0]), EXPECTED_LAYOUT,
                             'missing directory (no ToFMark scene found)')
  entries = []
  for scene in scenes:
    entry = {'id': scene, 'reader': reader}
    for role, name in names.items():
      if name:
        entry[role] = common.require_file(os.path.join(root, scene, name),
                                          EXPECTED_LAYOUT)
    entries.append(entry)
  return entries


def read_example(entry: dict) -> dict:
  """Returns 'depth' and 'depth_lr' (float32 metres, 0 = invalid), 'valid' (depth > 0) and
  'image' (H, W, 3) uint8: the intensity guide replicated to RGB if it is grey."""
  fn = get_reader(entry.get('reader', 'png16_mm'))
  out = {}
  if entry.get('depth'):
    out['depth'] = fn(entry['depth'])
    out['valid'] = out['depth'] > 0
  if entry.get('depth_lr'):
    out['depth_lr'] = fn(entry['depth_lr'])
  if entry.get('guide'):
    out['image'] = common.read_rgb(entry['guide'], EXPECTED_LAYOUT)
  return out
