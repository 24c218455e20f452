"""Shared helpers for the on-disk dataset readers.

Conventions (docs/design.md): images are HWC uint8 RGB, labels HW uint8 with 255 = ignore,
depth HW float32 metres with 0 = invalid. Every reader raises `DatasetLayoutError` for a missing
or undecodable file, naming the file and printing the layout it expected.

PNG at the native bit depth (Pillow reduces 16-bit RGB to 8 bits): `jaxseg.data.formats.png`.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

IGNORE = 255

# Errors that Pillow, zlib, scipy and h5py raise for undecodable input.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error,
                  UnidentifiedImageError, Image.DecompressionBombError, KeyError, IndexError,
                  TypeError, NotImplementedError)


class DatasetLayoutError(Exception):
  """A dataset file or directory is missing, corrupt or not in the publisher's format.

  Attributes: `path` (the offending file or directory), `expected` (the expected layout text),
  `reason` (what is wrong with it).
  """

  def __init__(self, path: str, expected: str, reason: str = 'missing'):
    self.path = os.fspath(path)
    self.expected = expected
    self.reason = reason
    super().__init__(f'{reason}: {self.path}\nExpected layout:\n{expected}')

  def __reduce__(self):  # picklable across data-loader worker processes
    return type(self), (self.path, self.expected, self.reason)


# ----------------------------------------------------------------------------------------------
# Layout checks.


def require_dir(path, expected: str) -> str:
  """Returns `path` as str; raises DatasetLayoutError if it is not a directory."""
  path = os.fspath(path)
  if not os.path.isdir(path):
    raise DatasetLayoutError(path, expected, 'missing directory')
  return path


def require_file(path, expected: str) -> str:
  """Returns `path` as str; raises DatasetLayoutError if it is not a file."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise DatasetLayoutError(path, expected, 'missing file')
  return path


def list_files(directory, suffix: str, expected: str, *, recursive: bool = False) -> list[str]:
  """Sorted paths of files in `directory` whose names end with `suffix` (none -> error)."""
  directory = require_dir(directory, expected)
  out = []
  if recursive:
    for dirpath, _, names in os.walk(directory):
      out += [os.path.join(dirpath, n) for n in names if n.endswith(suffix)]
  else:
    out = [os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(suffix)]
  if not out:
    raise DatasetLayoutError(directory, expected, f'no *{suffix} files in')
  return sorted(out)


def read_id_list(path, expected: str) -> list[str]:
  """Reads a split file with one id per line (first whitespace-separated token)."""
  path = require_file(path, expected)
  try:
    with open(path, encoding='utf-8') as f:
      ids = [line.split()[0] for line in f if line.strip()]
  except (OSError, UnicodeDecodeError) as e:
    raise DatasetLayoutError(path, expected, f'unreadable split file ({e})') from e
  return ids


# ----------------------------------------------------------------------------------------------
# Image reading through Pillow (8-bit data and 16-bit greyscale).


def open_image(path, expected: str) -> Image.Image:
  """Opens and fully decodes an image with Pillow; errors -> DatasetLayoutError."""
  path = require_file(path, expected)
  try:
    im = Image.open(path)
    if im.format == 'PNG':  # Pillow decodes a PNG cut after its pixel data without a word
      with Image.open(path) as check:
        check.verify()  # every chunk's CRC, through IEND
    im.load()
  except DECODE_ERRORS as e:
    raise DatasetLayoutError(path, expected, f'corrupt or undecodable image ({e})') from e
  return im


def read_rgb(path, expected: str) -> np.ndarray:
  """Reads any Pillow image as (H, W, 3) uint8 RGB (palette/grey images are converted)."""
  im = open_image(path, expected)
  if im.mode != 'RGB':
    im = im.convert('RGB')
  return np.asarray(im, dtype=np.uint8).copy()


def read_index_png(path, expected: str, *, allow_16bit: bool = False) -> np.ndarray:
  """Reads a single-channel label image without colour conversion.

  Palette ('P') and 'L' images give their stored indices as (H, W) uint8; with
  `allow_16bit`, 'I;16' images give (H, W) uint16. Multi-channel images raise.
  """
  im = open_image(path, expected)
  if im.mode in ('P', 'L'):
    return np.asarray(im, dtype=np.uint8).copy()
  if allow_16bit and im.mode.startswith('I;16'):
    return np.asarray(im).astype(np.uint16)
  if allow_16bit and im.mode == 'I':
    return np.asarray(im).astype(np.uint16)
  raise DatasetLayoutError(path, expected,
                           f'expected a single-channel label image, got PIL mode {im.mode!r}')


def map_labels(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
  """Maps integer labels through a lookup table; values past the table map to 255."""
  labels = np.asarray(labels)
  if labels.size and int(labels.max()) >= len(lut):
    lut = np.concatenate([lut, np.full(int(labels.max()) + 1 - len(lut), IGNORE, lut.dtype)])
  return lut[labels]


def make_lut(mapping: dict[int, int], size: int = 256, fill: int = IGNORE) -> np.ndarray:
  """A uint8 lookup table of `size` entries: mapping[k] for listed keys, `fill` elsewhere."""
  lut = np.full(size, fill, np.uint8)
  for k, v in mapping.items():
    lut[k] = v
  return lut


def resize_nearest(labels: np.ndarray, size_hw: Sequence[int]) -> np.ndarray:
  """Nearest-neighbour resize of an (H, W) uint8 map with PIL NEAREST (pixel-centre sampling)."""
  labels = np.asarray(labels)
  if labels.dtype != np.uint8:
    raise TypeError(f'resize_nearest expects uint8 labels, got {labels.dtype}')
  im = Image.fromarray(labels).resize((size_hw[1], size_hw[0]), Image.NEAREST)
  return np.asarray(im, dtype=np.uint8).copy()


# ----------------------------------------------------------------------------------------------
# MATLAB v5 files (scipy).


def load_mat_v5(path, expected: str, variables: Sequence[str], **kwargs) -> dict:
  """Loads a MATLAB v5 .mat with scipy and checks that `variables` are present."""
  import scipy.io  # pylint: disable=import-outside-toplevel

  path = require_file(path, expected)
  try:
    mat = scipy.io.loadmat(path, **kwargs)
  except (*DECODE_ERRORS, scipy.io.matlab.MatReadError) as e:
    raise DatasetLayoutError(path, expected, f'unreadable MATLAB v5 file ({e})') from e
  missing = [v for v in variables if v not in mat]
  if missing:
    raise DatasetLayoutError(path, expected, f'missing MATLAB variable(s) {missing} in')
  return mat


def mat_strings(cells) -> list[str]:
  """Flattens a scipy-loaded MATLAB cell array of char arrays into a list of str."""
  out = []
  for c in np.asarray(cells, dtype=object).ravel():
    while isinstance(c, np.ndarray) and c.dtype == object and c.size == 1:
      c = c.ravel()[0]
    if isinstance(c, np.ndarray):
      c = ''.join(c.ravel().tolist()) if c.size else ''
    out.append(str(c))
  return out
