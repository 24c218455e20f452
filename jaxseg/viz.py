"""Visualisation helpers: palettes, label / depth / normal / contour colouring, panels, PNG output.

Every function takes and returns NumPy arrays; colour images are uint8 (H, W, 3) RGB.
"""

from __future__ import annotations

import colorsys
import os
import tempfile
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Matplotlib's viridis sampled at 0, 0.1, ..., 1 (dark purple -> yellow), linearly interpolated.
_VIRIDIS_ANCHORS = np.array(
    [
        [68, 1, 84], [72, 36, 117], [65, 68, 135], [53, 95, 141], [42, 120, 142], [33, 145, 140],
        [34, 168, 132], [68, 191, 112], [122, 209, 81], [189, 223, 38], [253, 231, 37],
    ],
    dtype=np.float64,
)

_CITYSCAPES = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)


# ----------------------------------------------------------------------------- palettes


def cityscapes_palette() -> np.ndarray:
  """(19, 3) uint8 Cityscapes colours in trainId order (road, sidewalk, ..., bicycle)."""
  return np.array(_CITYSCAPES, dtype=np.uint8)


def pascal_voc_palette(n: int = 256) -> np.ndarray:
  """(n, 3) uint8 standard PASCAL VOC colour map (bit-interleaved class index)."""
  if n <= 0:
    raise ValueError(f'n must be positive, got {n}')
  idx = np.arange(n)
  palette = np.zeros((n, 3), dtype=np.int64)
  c = idx.copy()
  for shift in range(7, -1, -1):
    for ch in range(3):
      palette[:, ch] |= ((c >> ch) & 1) << shift
    c >>= 3
  return palette.astype(np.uint8)


def generic_palette(num_classes: int) -> np.ndarray:
  """(num_classes, 3) uint8 distinct colours for any K (ADE20K-style): golden-ratio hue steps
  with cycling saturation / value, deterministic, never pure black."""
  if num_classes <= 0:
    raise ValueError(f'num_classes must be positive, got {num_classes}')
  out = np.zeros((num_classes, 3), dtype=np.uint8)
  for i in range(num_classes):
    h = (i * 0.618033988749895) % 1.0
    s = (0.95, 0.65, 0.8)[i % 3]
    v = (0.95, 0.75, 0.55)[(i // 3) % 3]
    out[i] = np.round(np.array(colorsys.hsv_to_rgb(h, s, v)) * 255)
  return out


# ----------------------------------------------------------------------------- colouring


def colorize_labels(label: np.ndarray, palette: np.ndarray, ignore_label: int = 255,
                    ignore_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
  """Label map (..., H, W) int -> (..., H, W, 3) uint8 via ``palette`` (K, 3).

  ``ignore_label`` pixels get ``ignore_color``; any other value outside [0, K) is an error.
  """
  label = np.asarray(label)
  palette = np.asarray(palette, dtype=np.uint8)
  if palette.ndim != 2 or palette.shape[1] != 3:
    raise ValueError(f'palette must be (K, 3), got {palette.shape}')
  ignore = label == ignore_label
  bad = ~ignore & ((label < 0) | (label >= len(palette)))
  if bad.any():
    values = np.unique(label[bad])[:5]
    raise ValueError(f'label values {values} outside palette of {len(palette)} colours')
  out = palette[np.where(ignore, 0, label).astype(np.int64)]
  out[ignore] = np.asarray(ignore_color, dtype=np.uint8)
  return out


def apply_colormap(x: np.ndarray) -> np.ndarray:
  """Values (...,) in [0, 1] (clipped) -> (..., 3) uint8 viridis colours."""
  pos = np.clip(np.asarray(x, np.float64), 0, 1) * (len(_VIRIDIS_ANCHORS) - 1)
  i0 = np.minimum(np.floor(pos).astype(np.int64), len(_VIRIDIS_ANCHORS) - 2)
  w = (pos - i0)[..., None]
  rgb = _VIRIDIS_ANCHORS[i0] * (1 - w) + _VIRIDIS_ANCHORS[i0 + 1] * w
  return np.round(rgb).astype(np.uint8)


def colorize_depth(depth: np.ndarray, vmin: float | None = None, vmax: float | None = None,
                   invalid_color: Sequence[int] = (0, 0, 0)) -> np.ndarray:
  """Depth (..., H, W) metres -> (..., H, W, 3) uint8 viridis, near = yellow, far = purple.

  Pixels with depth <= 0 or non-finite are invalid and drawn ``invalid_color``. ``vmin`` /
  ``vmax`` default to the min / max of the valid depths.
  """
  depth = np.asarray(depth, np.float64)
  valid = np.isfinite(depth) & (depth > 0)
  if vmin is None:
    vmin = float(depth[valid].min()) if valid.any() else 0.0
  if vmax is None:
    vmax = float(depth[valid].max()) if valid.any() else 1.0
  scale = max(vmax - vmin, 1e-12)
  x = 1.0 - (np.where(valid, depth, vmax) - vmin) / scale
  out = apply_colormap(x)
  out[~valid] = np.asarray(invalid_color, dtype=np.uint8)
  return out


def colorize_normals(normals: np.ndarray) -> np.ndarray:
  """Normals (..., 3) in [-1, 1] -> uint8 (n + 1) / 2 * 255; all-zero (invalid) normals -> black."""
  normals = np.asarray(normals, np.float64)
  out = np.round((np.clip(normals, -1, 1) + 1) / 2 * 255).astype(np.uint8)
  out[~np.any(normals != 0, axis=-1)] = 0
  return out


def colorize_contours(contours: np.ndarray, color: Sequence[int] = (255, 255, 255),
                      background: Sequence[int] = (0, 0, 0)) -> np.ndarray:
  """Contours (..., H, W) (non-zero = edge; floats: > 0.5) -> (..., H, W, 3) uint8."""
  c = np.asarray(contours)
  edge = c > 0.5 if np.issubdtype(c.dtype, np.floating) else c != 0
  out = np.empty(c.shape + (3,), dtype=np.uint8)
  out[...] = np.asarray(background, dtype=np.uint8)
  out[edge] = np.asarray(color, dtype=np.uint8)
  return out


# ----------------------------------------------------------------------------- panels and files


def _as_rgb(panel: np.ndarray) -> np.ndarray:
  """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 / bool -> (H, W, 3) uint8."""
  panel = np.asarray(panel)
  if panel.dtype == bool:
    panel = panel.astype(np.uint8) * 255
  if panel.dtype != np.uint8:
    raise ValueError(f'panels must be uint8 (use the colorize_* functions), got {panel.dtype}')
  if panel.ndim == 2:
    panel = panel[..., None]
  if panel.ndim != 3 or panel.shape[2] not in (1, 3, 4):
    raise ValueError(f'panel must be (H, W[, 1|3|4]), got {panel.shape}')
  if panel.shape[2] == 1:
    panel = np.repeat(panel, 3, axis=2)
  return panel[..., :3]


def _resize_nearest(img: np.ndarray, height: int) -> np.ndarray:
  """Nearest-neighbour resize (H, W, C) -> (height, round(W * height / H), C), pixel centres."""
  h, w = img.shape[:2]
  if h == height:
    return img
  new_w = max(1, int(round(w * height / h)))
  rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
  cols = np.minimum(((np.arange(new_w) + 0.5) * w / new_w).astype(np.int64), w - 1)
  return img[rows[:, None], cols[None, :]]


def _title_strip(text: str, width: int, height: int, bg: int) -> np.ndarray:
  """(height, width, 3) uint8 strip with ``text`` drawn in the top-left corner."""
  strip = Image.new('RGB', (width, height), (bg, bg, bg))
  fg = 0 if bg > 127 else 255
  ImageDraw.Draw(strip).text((2, 1), text, fill=(fg, fg, fg), font=ImageFont.load_default())
  return np.asarray(strip)


def side_by_side(panels: Sequence[np.ndarray], titles: Sequence[str] | None = None, pad: int = 4,
                 bg: int = 255) -> np.ndarray:
  """Concatenate uint8 panels horizontally -> (H', W', 3) uint8.

  Panels ((H, W) or (H, W, 3)) are resized with nearest neighbour to the tallest panel's height
  and separated / surrounded by ``pad`` pixels of grey level ``bg``. With ``titles`` (one per
  panel) a 14-pixel strip with each title is added above its panel.
  """
  if not panels:
    raise ValueError('side_by_side needs at least one panel')
  if titles is not None and len(titles) != len(panels):
    raise ValueError(f'{len(titles)} titles for {len(panels)} panels')
  rgb = [_as_rgb(p) for p in panels]
  height = max(p.shape[0] for p in rgb)
  rgb = [_resize_nearest(p, height) for p in rgb]
  if titles is not None:
    rgb = [np.concatenate([_title_strip(t, p.shape[1], 14, bg), p], axis=0)
           for p, t in zip(rgb, titles)]
  total_h = rgb[0].shape[0] + 2 * pad
  total_w = sum(p.shape[1] for p in rgb) + pad * (len(rgb) + 1)
  out = np.full((total_h, total_w, 3), bg, dtype=np.uint8)
  x = pad
  for p in rgb:
    out[pad:pad + p.shape[0], x:x + p.shape[1]] = p
    x += p.shape[1] + pad
  return out


def _is_image_shape(shape: tuple[int, ...]) -> bool:
  return len(shape) == 2 or (len(shape) == 3 and shape[2] in (3, 4))


def save_png(path: str | os.PathLike, array: np.ndarray) -> None:
  """Write uint8 (H, W), (H, W, 3), (H, W, 4) or uint16 (H, W) ``array`` as PNG, atomically
  (a temporary file in the same directory, then os.replace). Creates parent directories."""
  array = np.asarray(array)
  if array.dtype == bool:
    array = array.astype(np.uint8) * 255
  if array.dtype == np.uint16 and array.ndim == 2:
    img = Image.fromarray(array)
  elif array.dtype == np.uint8 and _is_image_shape(array.shape):
    img = Image.fromarray(array)
  else:
    raise ValueError(f'cannot write {array.dtype} array of shape {array.shape} as PNG')
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path), suffix='.tmp')
  try:
    os.chmod(tmp, 0o644)
    with os.fdopen(fd, 'wb') as f:
      img.save(f, format='PNG')
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def overlay(image: np.ndarray, colors: np.ndarray, alpha: float = 0.5) -> np.ndarray:
  """(H, W, 3) uint8 image blended with (H, W, 3) uint8 label colours: (1-alpha) img + alpha c."""
  blend = (1.0 - alpha) * np.asarray(image, np.float32) + alpha * np.asarray(colors, np.float32)
  return np.clip(np.round(blend), 0, 255).astype(np.uint8)


def save_palette_png(path: str | os.PathLike, label: np.ndarray, palette: np.ndarray,
                     ignore_label: int = 255, ignore_color: Sequence[int] = (0, 0, 0)) -> None:
  """(H, W) class map as a palette ('P') PNG: pixel values are the class ids (the dataset's
  label format), the file's palette their colours (``ignore_label`` -> ``ignore_color``).
  Written atomically like ``save_png``."""
  label = np.asarray(label)
  palette = np.asarray(palette, np.uint8)
  if label.ndim != 2 or not (label.min(initial=0) >= 0 and label.max(initial=0) <= 255):
    raise ValueError(f'label map must be (H, W) with values 0..255, got {label.shape}')
  table = np.zeros((256, 3), np.uint8)
  table[:len(palette)] = palette[:256]
  table[ignore_label] = np.asarray(ignore_color, np.uint8)
  img = Image.fromarray(label.astype(np.uint8), mode='P')
  img.putpalette(table.ravel().tolist())
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path), suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      img.save(f, format='PNG')
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise

