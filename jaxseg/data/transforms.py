"""Joint image / dense-target transforms on NumPy examples (one random draw for all keys).

Images are resized bilinearly; labels, depth, normals, contours and valid masks with nearest
neighbour so they stay aligned. A horizontal flip negates the x component of normals.
"""
from typing import Callable, Sequence

import numpy as np
from PIL import Image

DENSE_NEAREST = ('label', 'depth', 'normals', 'contours', 'valid')
_PAD_VALUES = {'label': 255, 'depth': 0.0, 'normals': 0.0, 'contours': 0, 'valid': False}


def _resize_nearest(a: np.ndarray, h: int, w: int) -> np.ndarray:
  """PIL NEAREST semantics (samples pixel centres) for any dtype and trailing channels."""
  rows = np.minimum(((np.arange(h) + 0.5) * a.shape[0] / h).astype(np.int64), a.shape[0] - 1)
  cols = np.minimum(((np.arange(w) + 0.5) * a.shape[1] / w).astype(np.int64), a.shape[1] - 1)
  return a[rows][:, cols]


def _resize_image(img: np.ndarray, h: int, w: int) -> np.ndarray:
  return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def resize(example: dict, h: int, w: int) -> dict:
  out = dict(example)
  out['image'] = _resize_image(example['image'], h, w)
  for k in DENSE_NEAREST:
    if k in example:
      out[k] = _resize_nearest(example[k], h, w)
  return out


def random_scale(example: dict, rng: np.random.Generator, scales: Sequence[float] | None,
                 scale_range: Sequence[float] | None) -> dict:
  """Discrete choice from `scales` (DeepLab v2) or uniform in `scale_range` (PSPNet)."""
  if scales:
    s = float(rng.choice(np.asarray(scales)))
  elif scale_range:
    s = float(rng.uniform(scale_range[0], scale_range[1]))
  else:
    return example
  h, w = example['image'].shape[:2]
  return resize(example, max(int(h * s + 0.5), 1), max(int(w * s + 0.5), 1))


def pad_to(example: dict, h: int, w: int, image_fill: Sequence[float]) -> dict:
  """Pads bottom/right (top-left aligned) to at least (h, w): image with `image_fill`, targets ignore."""
  ih, iw = example['image'].shape[:2]
  ph, pw = max(h - ih, 0), max(w - iw, 0)
  if not ph and not pw:
    return example
  out = dict(example)
  img = np.empty((ih + ph, iw + pw, 3), example['image'].dtype)
  img[...] = np.asarray(image_fill, np.float64).round().astype(img.dtype)
  img[:ih, :iw] = example['image']
  out['image'] = img
  for k, fill in _PAD_VALUES.items():
    if k in example:
      a = example[k]
      padded = np.full((ih + ph, iw + pw) + a.shape[2:], fill, a.dtype)
      padded[:ih, :iw] = a
      out[k] = padded
  return out


def random_crop(example: dict, rng: np.random.Generator, h: int, w: int) -> dict:
  ih, iw = example['image'].shape[:2]
  y = int(rng.integers(0, ih - h + 1))
  x = int(rng.integers(0, iw - w + 1))
  return {k: (v[y:y + h, x:x + w] if isinstance(v, np.ndarray) and v.ndim >= 2 else v)
          for k, v in example.items()}


def random_flip(example: dict, rng: np.random.Generator) -> dict:
  if rng.random() >= 0.5:
    return example
  out = {k: (v[:, ::-1] if isinstance(v, np.ndarray) and v.ndim >= 2 else v)
         for k, v in example.items()}
  if 'normals' in out:
    out['normals'] = out['normals'] * np.array([-1.0, 1.0, 1.0], out['normals'].dtype)
  return out


def normalize(example: dict, mean: Sequence[float], std: Sequence[float], bgr: bool) -> dict:
  """uint8 RGB -> float32, channel order BGR if `bgr`, (x - mean) / std in the 0-255 range."""
  out = dict(example)
  img = example['image'].astype(np.float32)
  if bgr:
    img = img[..., ::-1]
  out['image'] = (img - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
  return out


def _finalize(example: dict, keys: Sequence[str]) -> dict:
  out = {}
  for k in keys:
    v = np.ascontiguousarray(example[k])
    if k == 'label':
      v = v.astype(np.int32)
    elif v.dtype == np.float64:
      v = v.astype(np.float32)
    out[k] = v
  return out


def make_train_transform(aug, keys: Sequence[str]) -> Callable:
  """Training recipe from `config.dataset.augment`: scale, pad, crop, flip, normalise."""
  crop_h, crop_w = aug.crop_size

  def transform(example: dict, rng: np.random.Generator) -> dict:
    ex = random_scale(example, rng, aug.get('scales'), aug.get('scale_range'))
    # Pad with the mean so that it normalises to zero; labels with ignore.
    fill = aug.mean[::-1] if aug.bgr else aug.mean
    ex = pad_to(ex, crop_h, crop_w, image_fill=fill)
    ex = random_crop(ex, rng, crop_h, crop_w)
    if aug.flip:
      ex = random_flip(ex, rng)
    ex = normalize(ex, aug.mean, aug.std, aug.bgr)
    return _finalize(ex, keys)
  return transform


def make_eval_transform(aug, keys: Sequence[str]) -> Callable:
  """Evaluation: the whole image, only normalised."""
  def transform(example: dict) -> dict:
    return _finalize(normalize(example, aug.mean, aug.std, aug.bgr), keys)
  return transform
