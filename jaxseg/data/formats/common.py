"""Shared helpers for the on-disk dataset readers.

Conventions (docs/design.md): images are HWC uint8 RGB, labels HW uint8 with 255 = ignore,
depth HW float32 metres with 0 = invalid. Every reader raises `DatasetLayoutError` for a missing
or undecodable file, naming the file and printing the layout it expected.

PNG: Pillow reduces 16-bit RGB PNGs to 8 bits, so `read_png` is a small zlib/NumPy decoder that
keeps the native bit depth, and `read_png16_rgb` (SYNTHIA's 16-bit 3-channel labels) uses a fast
exact route through Pillow's own decoder with `read_png` as the fallback.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

IGNORE = 255

# Errors that Pillow, zlib, scipy and h5py raise for undecodable input.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error,
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
  except _DECODE_ERRORS as e:
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
# A small PNG decoder that keeps the native bit depth.

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def _paeth_lane(cur: list, prev: list, start: int, stop: int, step: int) -> None:
  """In-place Paeth reconstruction of one byte lane (bytes start, start+step, ...)."""
  a = c = 0
  for i in range(start, stop, step):
    b = prev[i]
    pa = b - c if b > c else c - b          # |p - a| = |b - c|
    pb = a - c if a > c else c - a          # |p - b| = |a - c|
    s = a + b - c - c
    pc = s if s > 0 else -s                 # |p - c| = |a + b - 2c|
    if pa <= pb and pa <= pc:
      pred = a
    elif pb <= pc:
      pred = b
    else:
      pred = c
    a = (cur[i] + pred) & 0xFF
    cur[i] = a
    c = b


def _avg_lane(cur: list, prev: list, start: int, stop: int, step: int) -> None:
  """In-place Average reconstruction of one byte lane."""
  a = 0
  for i in range(start, stop, step):
    a = (cur[i] + ((a + prev[i]) >> 1)) & 0xFF
    cur[i] = a


def _unfilter(data: np.ndarray, height: int, stride: int, bpp: int,
              lanes: Sequence[int]) -> np.ndarray:
  """Undoes PNG scanline filters. data: (height, 1 + stride) uint8. Returns (height, stride).

  Each byte lane (byte offset modulo bpp) only depends on the same lane, so only `lanes` are
  reconstructed for the sequential filters (Average, Paeth); other lanes are left undefined.
  """
  out = np.zeros((height, stride), np.uint8)
  prev = np.zeros(stride, np.uint8)
  for y in range(height):
    ftype = int(data[y, 0])
    row = data[y, 1:]
    if ftype == 0:
      cur = row.copy()
    elif ftype == 1:  # Sub: running sum per lane, modulo 256.
      padded = np.concatenate([row, np.zeros((-stride) % bpp, np.uint8)])
      cur = np.cumsum(padded.reshape(-1, bpp), axis=0, dtype=np.uint8).ravel()[:stride]
    elif ftype == 2:  # Up
      cur = row + prev
    elif ftype in (3, 4):
      cur_l, prev_l = row.tolist(), prev.tolist()
      fn = _avg_lane if ftype == 3 else _paeth_lane
      for lane in lanes:
        fn(cur_l, prev_l, lane, stride, bpp)
      cur = np.asarray(cur_l, np.uint8)
    else:
      raise ValueError(f'invalid PNG filter type {ftype} in row {y}')
    out[y] = cur
    prev = cur
  return out


def read_png(path, expected: str, *, channels: Iterable[int] | None = None) -> np.ndarray:
  """Decodes a non-interlaced PNG at its native bit depth with zlib and NumPy.

  Returns (H, W) for greyscale/palette (palette indices, not colours) or (H, W, C) for
  grey+alpha / RGB / RGBA, as uint8 (bit depth 8) or uint16 (bit depth 16). `channels`
  optionally restricts decoding to those channel indices (others are returned as 0), which
  skips most of the per-byte work for Average/Paeth-filtered rows. Chunk CRCs are checked;
  any structural problem raises DatasetLayoutError naming the file.
  """
  path = require_file(path, expected)
  try:
    return _decode_png(path, channels)
  except DatasetLayoutError:
    raise
  except (ValueError, zlib.error, struct.error, OSError) as e:
    raise DatasetLayoutError(path, expected, f'corrupt or unsupported PNG ({e})') from e


def _decode_png(path: str, channels) -> np.ndarray:
  with open(path, 'rb') as f:
    blob = f.read()
  if not blob.startswith(_PNG_SIGNATURE):
    raise ValueError('not a PNG file (bad signature)')
  pos, header, idat, seen_end = len(_PNG_SIGNATURE), None, [], False
  while pos < len(blob):
    if pos + 8 > len(blob):
      raise ValueError('truncated chunk header')
    length, ctype = struct.unpack('>I4s', blob[pos:pos + 8])
    body = blob[pos + 8:pos + 8 + length]
    crc = blob[pos + 8 + length:pos + 12 + length]
    if len(body) != length or len(crc) != 4:
      raise ValueError(f'truncated {ctype!r} chunk')
    if zlib.crc32(ctype + body) & 0xFFFFFFFF != struct.unpack('>I', crc)[0]:
      raise ValueError(f'CRC mismatch in {ctype!r} chunk')
    pos += 12 + length
    if ctype == b'IHDR':
      header = struct.unpack('>IIBBBBB', body)
    elif ctype == b'IDAT':
      idat.append(body)
    elif ctype == b'IEND':
      seen_end = True
      break
  if header is None or not idat or not seen_end:
    raise ValueError('missing IHDR, IDAT or IEND chunk (file truncated?)')
  width, height, depth, ctype, _, _, interlace = header
  if ctype not in _CHANNELS or depth not in (8, 16) or (ctype == 3 and depth != 8):
    raise ValueError(f'unsupported colour type {ctype} / bit depth {depth}')
  if interlace:
    raise ValueError('interlaced PNGs are not supported')
  nch = _CHANNELS[ctype]
  bps = depth // 8
  bpp = nch * bps
  stride = width * bpp
  raw = zlib.decompress(b''.join(idat))
  if len(raw) != height * (stride + 1):
    raise ValueError(f'image data has {len(raw)} bytes, expected {height * (stride + 1)}')
  chans = range(nch) if channels is None else sorted(set(channels))
  if any(not 0 <= c < nch for c in chans):
    raise ValueError(f'channel index out of range for a {nch}-channel PNG')
  lanes = [c * bps + k for c in chans for k in range(bps)]
  data = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
  rows = _unfilter(data, height, stride, bpp, lanes)
  if depth == 16:
    arr = rows.view('>u2').astype(np.uint16).reshape(height, width, nch)
  else:
    arr = rows.reshape(height, width, nch)
  if channels is not None:
    mask = np.zeros(nch, bool)
    mask[list(chans)] = True
    arr = np.where(mask, arr, 0).astype(arr.dtype)
  return arr[..., 0] if nch == 1 else arr


def read_png16_rgb(path, expected: str, *, channels: Iterable[int] | None = None) -> np.ndarray:
  """Reads a 16-bit RGB PNG as (H, W, 3) uint16, exactly.

  Fast path: Pillow's own zip decoder is run twice on the file, once with its big-endian
  16-bit raw mode (which keeps the high byte of each sample) and once with the little-endian
  raw mode (which then keeps the low byte); both passes undo the scanline filters with the same
  6-byte pixel stride, so high * 256 + low is the exact sample. If Pillow does not present the
  file that way, `read_png` (pure zlib/NumPy) is used instead.
  """
  path = require_file(path, expected)
  try:
    halves = []
    for rawmode in ('RGB;16B', 'RGB;16L'):
      im = Image.open(path)
      tile = im.tile
      if (im.mode != 'RGB' or len(tile) != 1 or tile[0][0] != 'zip'
              or tile[0][3] != 'RGB;16B' or getattr(im, 'n_frames', 1) != 1):
        halves = None
        break
      t = tile[0]
      im.tile = [t._replace(args=rawmode)] if hasattr(t, '_replace') else [
          (t[0], t[1], t[2], rawmode)]
      im.load()
      halves.append(np.asarray(im, dtype=np.uint16))
  except _DECODE_ERRORS:
    halves = None  # let the strict decoder produce the error message
  if halves:
    arr = (halves[0] << 8) | halves[1]
    if channels is not None:
      mask = np.zeros(3, bool)
      mask[list(channels)] = True
      arr = np.where(mask, arr, 0).astype(np.uint16)
    return arr
  arr = read_png(path, expected, channels=channels)
  if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint16:
    raise DatasetLayoutError(path, expected,
                             f'expected a 16-bit 3-channel PNG, got shape {arr.shape} '
                             f'{arr.dtype}')
  return arr


def write_png(path, array: np.ndarray, *, filters: Sequence[int] = (0,)) -> None:
  """Writes an (H, W) or (H, W, C) uint8/uint16 array as a PNG (grey, GA, RGB or RGBA).

  Row y uses filter type filters[y % len(filters)] (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth),
  so tests can exercise every filter. Not a general-purpose encoder: no palette, no interlace.
  """
  arr = np.asarray(array)
  if arr.dtype not in (np.uint8, np.uint16):
    raise TypeError(f'write_png needs uint8 or uint16, got {arr.dtype}')
  if arr.ndim == 2:
    arr = arr[..., None]
  h, w, nch = arr.shape
  ctype = {1: 0, 2: 4, 3: 2, 4: 6}[nch]
  depth = 8 * arr.dtype.itemsize
  bpp = nch * arr.dtype.itemsize
  rows = arr.astype('>u2' if depth == 16 else np.uint8).view(np.uint8).reshape(h, w * bpp)
  rows = rows.astype(np.int32)
  out = bytearray()
  prev = np.zeros(w * bpp, np.int32)
  for y in range(h):
    ftype = filters[y % len(filters)]
    x = rows[y]
    a = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
    c = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
    b = prev
    if ftype == 0:
      f = x
    elif ftype == 1:
      f = x - a
    elif ftype == 2:
      f = x - b
    elif ftype == 3:
      f = x - (a + b) // 2
    elif ftype == 4:
      pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
      pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
      f = x - pred
    else:
      raise ValueError(f'bad filter type {ftype}')
    out.append(ftype)
    out += (f & 0xFF).astype(np.uint8).tobytes()
    prev = x

  def chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack('>I', len(body)) + kind + body
            + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF))

  with open(path, 'wb') as f:
    f.write(_PNG_SIGNATURE)
    f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 0)))
    f.write(chunk(b'IDAT', zlib.compress(bytes(out))))
    f.write(chunk(b'IEND', b''))


# ----------------------------------------------------------------------------------------------
# MATLAB v5 files (scipy).


def load_mat_v5(path, expected: str, variables: Sequence[str], **kwargs) -> dict:
  """Loads a MATLAB v5 .mat with scipy and checks that `variables` are present."""
  import scipy.io  # pylint: disable=import-outside-toplevel

  path = require_file(path, expected)
  try:
    mat = scipy.io.loadmat(path, **kwargs)
  except (*_DECODE_ERRORS, scipy.io.matlab.MatReadError) as e:
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
