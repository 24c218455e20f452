"""Middlebury stereo 2005/2006 and 2014 (MiddEval3) disparity ground truth, as published.

2005/2006: `disp1.png` is 8-bit with 0 = unknown; true disparity = value + dmin (dmin.txt), and
  depth = f * B / disparity with f = 3740 px and B = 160 mm at full size. For HalfSize/ThirdSize
  folders f is divided by 2/3 and value + dmin (the folder's own dmin.txt) is taken to be in that
  resolution's pixels (the source marks this as unverified).
2014: `disp0GT.pfm` (or `disp0.pfm`) is a PFM float map with inf = invalid; depth[mm] =
  baseline * f / (d + doffs) with f, doffs and baseline (mm) from calib.txt.
Depth is returned in metres, 0 = invalid; disparity in pixels, 0 where invalid.
"""

from __future__ import annotations

import os
import re

import numpy as np

from jaxseg.data.formats import common
from jaxseg.data.formats.common import DatasetLayoutError

EXPECTED_LAYOUT = """\
<root>/<split>/<Scene>/      split = FullSize|HalfSize|ThirdSize (2005/2006) or a folder of
                             2014 scenes, e.g. MiddEval3 trainingH
  2005/2006 scene:  view1.png (RGB), disp1.png ('L' 8-bit, 0 = unknown), dmin.txt (integer)
  2014 scene:       im0.png (RGB), disp0GT.pfm or disp0.pfm ('Pf', inf = invalid),
                    calib.txt (cam0=[f 0 cx; 0 f cy; 0 0 1], doffs=, baseline= mm, ...)"""

FOCAL_2005_2006 = 3740.0     # pixels, full size
BASELINE_2005_2006 = 160.0   # millimetres
_SIZE_FACTORS = {'FullSize': 1, 'HalfSize': 2, 'ThirdSize': 3}

SCENES_2005 = ('Art', 'Books', 'Dolls', 'Laundry', 'Moebius', 'Reindeer')
SCENES_2006 = ('Aloe', 'Baby1', 'Baby2', 'Baby3', 'Bowling1', 'Bowling2', 'Cloth1', 'Cloth2',
               'Cloth3', 'Cloth4', 'Flowerpots', 'Lampshade1', 'Lampshade2', 'Midd1', 'Midd2',
               'Monopoly', 'Plastic', 'Rocks1', 'Rocks2', 'Wood1', 'Wood2')


def read_pfm(path, *, return_scale: bool = False):
  """Reads a PFM file as float32 (H, W) ('Pf') or (H, W, 3) ('PF'), rows top-to-bottom.

  The header's scale sign gives the byte order (negative = little-endian); the samples are
  returned as stored (|scale| is metadata and is not multiplied in; Middlebury stores -1/255
  with disparities in pixels). With `return_scale`, returns (array, scale).
  """
  path = common.require_file(path, EXPECTED_LAYOUT)
  try:
    with open(path, 'rb') as f:
      kind = f.readline().strip()
      if kind not in (b'PF', b'Pf'):
        raise ValueError(f'bad PFM magic {kind[:8]!r}')
      dims = f.readline().split()
      while not dims:  # tolerate blank lines
        dims = f.readline().split()
      width, height = int(dims[0]), int(dims[1])
      scale = float(f.readline().strip())
      if width <= 0 or height <= 0 or scale == 0:
        raise ValueError(f'bad PFM header {width}x{height} scale {scale}')
      nch = 3 if kind == b'PF' else 1
      count = width * height * nch
      blob = f.read(4 * count)
  except (OSError, ValueError, IndexError, UnicodeDecodeError) as e:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, f'corrupt PFM ({e})') from e
  if len(blob) != 4 * count:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'truncated PFM: {len(blob)} of {4 * count} data bytes in')
  data = np.frombuffer(blob, '<f4' if scale < 0 else '>f4')
  shape = (height, width) if nch == 1 else (height, width, 3)
  arr = np.ascontiguousarray(data.reshape(shape)[::-1]).astype(np.float32)
  return (arr, scale) if return_scale else arr


def read_calib(path) -> dict:
  """Parses a 2014 calib.txt -> {'f', 'cx', 'cy', 'doffs', 'baseline', ...} as floats."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  out = {}
  try:
    with open(path, encoding='utf-8') as fh:
      for line in fh:
        if '=' not in line:
          continue
        key, val = (s.strip() for s in line.split('=', 1))
        if key == 'cam0':
          nums = [float(x) for x in re.split(r'[\s;\[\]]+', val) if x]
          out['f'], out['cx'], out['cy'] = nums[0], nums[2], nums[5]
        elif key != 'cam1':
          out[key] = float(val)
  except (OSError, ValueError, IndexError, UnicodeDecodeError) as e:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, f'corrupt calib.txt ({e})') from e
  missing = [k for k in ('f', 'doffs', 'baseline') if k not in out]
  if missing:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, f'calib.txt lacks {missing}:')
  return out


def read_dmin(path) -> float:
  """Reads dmin.txt (a single number, full-size disparity offset in pixels)."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  try:
    with open(path, encoding='utf-8') as fh:
      return float(fh.read().split()[0])
  except (OSError, ValueError, IndexError, UnicodeDecodeError) as e:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, f'corrupt dmin.txt ({e})') from e


def read_disp_png(path) -> np.ndarray:
  """A 2005/2006 disparity PNG as stored: (H, W) uint8, 0 = unknown."""
  return common.read_index_png(path, EXPECTED_LAYOUT)


def _scene_entry(scene_dir: str, split: str) -> dict:
  name = os.path.basename(scene_dir)
  j = os.path.join
  if os.path.exists(j(scene_dir, 'calib.txt')):
    disp = next((j(scene_dir, n) for n in ('disp0GT.pfm', 'disp0.pfm')
                 if os.path.isfile(j(scene_dir, n))), None)
    if disp is None:
      raise DatasetLayoutError(j(scene_dir, 'disp0GT.pfm'), EXPECTED_LAYOUT,
                               'missing file (nor disp0.pfm)')
    return {'id': name, 'format': '2014', 'disparity': disp,
            'image': common.require_file(j(scene_dir, 'im0.png'), EXPECTED_LAYOUT),
            'calib': common.require_file(j(scene_dir, 'calib.txt'), EXPECTED_LAYOUT)}
  return {'id': name, 'format': '2005/2006', 'size_factor': _SIZE_FACTORS.get(split, 1),
          'image': common.require_file(j(scene_dir, 'view1.png'), EXPECTED_LAYOUT),
          'disparity': common.require_file(j(scene_dir, 'disp1.png'), EXPECTED_LAYOUT),
          'dmin': common.require_file(j(scene_dir, 'dmin.txt'), EXPECTED_LAYOUT)}


def list_examples(root, split: str) -> list[dict]:
  """Scenes under root/split: [{'id': scene, 'format': '2014' | '2005/2006', 'image',
  'disparity', and 'calib' (2014) or 'dmin' + 'size_factor' (2005/2006)}].

  A scene with calib.txt is read as 2014, otherwise as 2005/2006; a missing file raises
  DatasetLayoutError naming it.
  """
  base = common.require_dir(os.path.join(common.require_dir(root, EXPECTED_LAYOUT), split),
                            EXPECTED_LAYOUT)
  scenes = sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))
  if not scenes:
    raise DatasetLayoutError(base, EXPECTED_LAYOUT, 'no scene directories in')
  return [_scene_entry(os.path.join(base, s), split) for s in scenes]


def read_example(entry: dict) -> dict:
  """Returns 'image' (H, W, 3) uint8, 'disparity' (H, W) float32 px (0 = invalid),
  'depth' (H, W) float32 metres (0 = invalid) and 'valid' (H, W) bool."""
  image = common.read_rgb(entry['image'], EXPECTED_LAYOUT)
  if entry['format'] == '2014':
    d = read_pfm(entry['disparity'])
    if d.ndim != 2:
      raise DatasetLayoutError(entry['disparity'], EXPECTED_LAYOUT,
                               'expected a 1-channel Pf disparity, got PF in')
    cal = read_calib(entry['calib'])
    valid = np.isfinite(d)
    disp = np.where(valid, d, 0.0).astype(np.float64)
    depth_mm = cal['baseline'] * cal['f'] / np.where(valid, disp + cal['doffs'], 1.0)
    valid &= depth_mm > 0
  else:
    raw = read_disp_png(entry['disparity'])
    s = entry.get('size_factor', 1)
    valid = raw > 0
    disp = np.where(valid, raw.astype(np.float64) + read_dmin(entry['dmin']), 0.0)
    valid &= disp > 0
    depth_mm = (FOCAL_2005_2006 / s) * BASELINE_2005_2006 / np.where(valid, disp, 1.0)
  if disp.shape != image.shape[:2]:
    raise DatasetLayoutError(entry['disparity'], EXPECTED_LAYOUT,
                             f'size {disp.shape[::-1]} differs from the image '
                             f'{image.shape[1::-1]} for')
  return {'image': image,
          'disparity': np.where(valid, disp, 0.0).astype(np.float32),
          'depth': np.where(valid, depth_mm / 1000.0, 0.0).astype(np.float32),
          'valid': valid}
