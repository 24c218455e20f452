"""MPI Sintel depth (`.dpt`) as published in MPI-Sintel-depth-training-20150305.

`.dpt`: float32 tag 202021.25 ('PIEH'), int32 width, int32 height, then width * height float32
depths, row-major, little-endian. Depth is returned as stored (Sintel's scene units, treated as
metres; the unit is not stated by the source). `.cam` (same tag, 3x3 intrinsic + 3x4 extrinsic
float64) is read by `read_cam` (format from the Sintel SDK, not re-verified).
"""

from __future__ import annotations

import os

import numpy as np

from jaxseg.data.formats import common
from jaxseg.data.formats.common import DatasetLayoutError

EXPECTED_LAYOUT = """\
<root>/                                     (MPI-Sintel-depth-training-20150305/ merged with
                                             MPI-Sintel-complete/ for the images)
  <split>/depth/<scene>/frame_0001.dpt ...   split = training
  <split>/camdata_left/<scene>/frame_0001.cam   (optional)
  <split>/{clean,final}/<scene>/frame_0001.png  (RGB; needed when image_pass is set)"""

TAG_FLOAT = 202021.25
_MAX_PIXELS = 100_000_000


def _read_header(f, path):
  head = f.read(12)
  if len(head) != 12:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, 'truncated header in')
  tag = np.frombuffer(head[:4], '<f4')[0]
  width, height = (int(x) for x in np.frombuffer(head[4:], '<i4'))
  if tag != np.float32(TAG_FLOAT):
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'bad tag {tag} (expected {TAG_FLOAT}; wrong endianness?) in')
  return width, height


def read_dpt(path) -> np.ndarray:
  """Reads a `.dpt` depth map as (H, W) float32."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  with open(path, 'rb') as f:
    width, height = _read_header(f, path)
    if not (width > 0 and height > 0 and width * height < _MAX_PIXELS):
      raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                               f'implausible size {width}x{height} in')
    blob = f.read(4 * width * height)
  if len(blob) != 4 * width * height:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT,
                             f'truncated: {len(blob)} of {4 * width * height} data bytes in')
  return np.frombuffer(blob, '<f4').reshape(height, width).astype(np.float32)


def read_cam(path) -> tuple[np.ndarray, np.ndarray]:
  """Reads a `.cam` file -> (K (3, 3) float64 intrinsics, E (3, 4) float64 extrinsics)."""
  path = common.require_file(path, EXPECTED_LAYOUT)
  with open(path, 'rb') as f:
    tag = f.read(4)
    if len(tag) != 4 or np.frombuffer(tag, '<f4')[0] != np.float32(TAG_FLOAT):
      raise DatasetLayoutError(path, EXPECTED_LAYOUT, 'bad tag in')
    blob = f.read(8 * 21)
  if len(blob) != 8 * 21:
    raise DatasetLayoutError(path, EXPECTED_LAYOUT, 'truncated camera file')
  vals = np.frombuffer(blob, '<f8')
  return vals[:9].reshape(3, 3).copy(), vals[9:].reshape(3, 4).copy()


def list_examples(root, split: str = 'training', *, image_pass: str | None = 'clean'
                  ) -> list[dict]:
  """Frames with depth: [{'id': '<scene>/frame_XXXX', 'depth', 'image' (if image_pass),
  'camera' (if present)}]. image_pass is 'clean', 'final' or None (depth only)."""
  if image_pass not in ('clean', 'final', None):
    raise ValueError(f"image_pass must be 'clean', 'final' or None, got {image_pass!r}")
  root = common.require_dir(root, EXPECTED_LAYOUT)
  depth_dir = os.path.join(root, split, 'depth')
  entries = []
  for dpt in common.list_files(depth_dir, '.dpt', EXPECTED_LAYOUT, recursive=True):
    scene = os.path.relpath(os.path.dirname(dpt), depth_dir)
    frame = os.path.basename(dpt)[:-4]
    entry = {'id': f'{scene}/{frame}', 'depth': dpt}
    if image_pass:
      entry['image'] = common.require_file(
          os.path.join(root, split, image_pass, scene, frame + '.png'), EXPECTED_LAYOUT)
    cam = os.path.join(root, split, 'camdata_left', scene, frame + '.cam')
    if os.path.isfile(cam):
      entry['camera'] = cam
    entries.append(entry)
  return entries


def read_example(entry: dict) -> dict:
  """Returns 'depth' (H, W) float32 (0 = invalid), 'valid' (H, W) bool and, if listed,
  'image' (H, W, 3) uint8 RGB."""
  depth = read_dpt(entry['depth'])
  valid = np.isfinite(depth) & (depth > 0)
  out = {'depth': np.where(valid, depth, 0).astype(np.float32), 'valid': valid}
  if entry.get('image'):
    out['image'] = common.read_rgb(entry['image'], EXPECTED_LAYOUT)
    if out['image'].shape[:2] != depth.shape:
      raise DatasetLayoutError(entry['depth'], EXPECTED_LAYOUT,
                               'depth size differs from the image for')
  return out
