"""Joint image / dense-target transforms on NumPy examples (one random draw for all keys).

Images are resampled bilinearly (or bicubically where a recipe says so); labels, depth,
normals, contours, valid masks and disparity with nearest neighbour, so they stay aligned.
Normals follow the geometry: a horizontal flip negates x, a vertical flip y, a transpose swaps
x and y, a rotation rotates (x, y). Out-of-image pixels are filled with the pixel mean (it
normalises to 0) in the image and with ignore / invalid in the targets.

`config.dataset.augment.recipe` picks the training recipe (fields in `jaxseg.data.recipes`;
complete presets per method in `RECIPES`):
  'deeplab' (default)  discrete `scales` (or uniform `scale_range`), pad bottom/right, crop, flip
  'pspnet'   uniform scale, rotation, Gaussian blur, flip, crop with centred padding
  'resize'   fixed `resize_to` (AdaptSegNet), optional flip / crop
  'zoom'     flip, centre zoom by a factor from `zoom` with depth / factor (PAD-Net)
  'dsr'      depth super-resolution patches, flips, transpose, low-resolution inputs
"""
from typing import Callable, Sequence

import numpy as np
from PIL import Image

DENSE_NEAREST = ('label', 'depth', 'normals', 'contours', 'valid', 'disparity')
_PAD_VALUES = {'label': 255, 'depth': 0.0, 'normals': 0.0, 'contours': 0, 'valid': False,
               'disparity': 0.0}

CAFFE_BGR_MEAN = (104.008, 116.669, 122.675)                    # DeepLab v2 init (BGR)
ADAPTSEGNET_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
IMAGENET_MEAN = (123.675, 116.28, 103.53)                       # RGB, 0-255
IMAGENET_STD = (58.395, 57.12, 57.375)
UNIT_STD = (1.0, 1.0, 1.0)

# Presets per method (specs: deeplabv2.md §4, pspnet.md §4, adaptsegnet.md §5, padnet.md §2.7,
# ctkt_dsr.md §7-8). Not in the specs, taken from the reference code's defaults: PSPNet's
# rotation and blur probabilities (semseg RandRotate p=0.5, RandomGaussianBlur radius 5, p=0.5)
# and the zoom centre (w/2, h/2) of MTL-PyTorch's ScaleNRotate (cv2.getRotationMatrix2D).
RECIPES = {
    'deeplabv2': dict(recipe='deeplab', scales=(0.5, 0.75, 1.0, 1.25, 1.5), scale_range=(),
                      crop_size=(321, 321), flip=True, mean=CAFFE_BGR_MEAN, std=UNIT_STD,
                      bgr=True),
    'pspnet': dict(recipe='pspnet', scales=(), scale_range=(0.5, 2.0), rotate=(-10.0, 10.0),
                   rotate_prob=0.5, blur_prob=0.5, blur_kernel=5, crop_size=(473, 473),
                   flip=True, mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr=False),
    'adaptsegnet_gta5': dict(recipe='resize', resize_to=(720, 1280), image_interp='bicubic',
                             crop_size=(720, 1280), flip=False, mean=ADAPTSEGNET_BGR_MEAN,
                             std=UNIT_STD, bgr=True),
    'adaptsegnet_cityscapes': dict(recipe='resize', resize_to=(512, 1024),
                                   eval_resize_to=(512, 1024), image_interp='bicubic',
                                   crop_size=(512, 1024), flip=False,
                                   mean=ADAPTSEGNET_BGR_MEAN, std=UNIT_STD, bgr=True),
    'padnet': dict(recipe='zoom', zoom=(1.0, 1.2, 1.5), flip=True, crop_size=(480, 640),
                   mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr=False),
    'dsr': dict(recipe='dsr', crop_size=(256, 256), dsr_scale=4, dsr_protocol='nyu', flip=True,
                vflip=True, transpose=True, mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr=False),
}


def recipe(name: str, **overrides) -> dict:
  """A copy of `RECIPES[name]` with `overrides`, ready for `config.dataset.augment`."""
  if name not in RECIPES:
    raise ValueError(f'unknown augmentation recipe {name!r}; known: {sorted(RECIPES)}')
  return dict(RECIPES[name], **overrides)


# ---------------------------------------------------------------------------------------------
# Resizing, padding, cropping, flipping.

def spatial_keys(example: dict, ref: str = 'image') -> list:
  """Keys of arrays with the reference array's height and width (transformed together)."""
  hw = example[ref].shape[:2]
  return [k for k, v in example.items()
          if isinstance(v, np.ndarray) and v.ndim >= 2 and v.shape[:2] == hw]


def _resize_nearest(a: np.ndarray, h: int, w: int) -> np.ndarray:
  """PIL NEAREST semantics (samples pixel centres) for any dtype and trailing channels."""
  rows = np.minimum(((np.arange(h) + 0.5) * a.shape[0] / h).astype(np.int64), a.shape[0] - 1)
  cols = np.minimum(((np.arange(w) + 0.5) * a.shape[1] / w).astype(np.int64), a.shape[1] - 1)
  return a[rows][:, cols]


INTERPOLATIONS = {'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC}


def resize_image(img: np.ndarray, h: int, w: int, interp: str = 'bilinear') -> np.ndarray:
  return np.asarray(Image.fromarray(img).resize((w, h), INTERPOLATIONS[interp]))


def resize(example: dict, h: int, w: int, interp: str = 'bilinear') -> dict:
  """Image with Pillow (`interp`), dense targets with nearest; other keys unchanged."""
  out = dict(example)
  out['image'] = resize_image(example['image'], h, w, interp)
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
  """Pads bottom/right to at least (h, w): image with `image_fill`, targets with ignore."""
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
  keys = set(spatial_keys(example))
  return {k: (v[y:y + h, x:x + w] if k in keys else v) for k, v in example.items()}


def _map_normals(out: dict, linear: np.ndarray) -> dict:
  """Applies the 2x2 orthogonal `linear` (image-plane geometry) to the normals' (x, y)."""
  if 'normals' in out:
    n = out['normals']
    xy = n[..., :2] @ np.asarray(linear, n.dtype).T
    out['normals'] = np.concatenate([xy, n[..., 2:]], axis=-1)
  return out


def flip(example: dict, axis: int = 1) -> dict:
  """Mirror along width (axis=1) or height (axis=0); normals x (or y) are negated."""
  keys = set(spatial_keys(example))
  out = {k: (np.flip(v, axis) if k in keys else v) for k, v in example.items()}
  return _map_normals(out, np.diag([-1.0, 1.0] if axis == 1 else [1.0, -1.0]))


def transpose(example: dict) -> dict:
  """Swaps height and width; normals x and y are swapped."""
  keys = set(spatial_keys(example))
  out = {k: (np.swapaxes(v, 0, 1) if k in keys else v) for k, v in example.items()}
  return _map_normals(out, np.array([[0.0, 1.0], [1.0, 0.0]]))


def random_flip(example: dict, rng: np.random.Generator, axis: int = 1) -> dict:
  return flip(example, axis) if rng.random() < 0.5 else example


def scale_depth(example: dict, s: float) -> dict:
  """Geometry scaled by `s` looks `s` times closer: depth / s, disparity * s (0 stays 0)."""
  out = dict(example)
  if 'depth' in out:
    out['depth'] = (out['depth'] / np.float32(s)).astype(out['depth'].dtype)
  if 'disparity' in out:
    out['disparity'] = (out['disparity'] * np.float32(s)).astype(out['disparity'].dtype)
  return out


# ---------------------------------------------------------------------------------------------
# One affine resampling for a whole chain of geometric steps, and blur.

def affine_warp(example: dict, a: np.ndarray, out_hw: Sequence[int],
                image_fill: Sequence[float]) -> dict:
  """Resamples every spatial array at source = a @ (x, y, 1) for output pixel (x, y).

  Pixel centres are integer coordinates. A pixel is inside when the nearest source pixel
  exists; outside pixels get `image_fill` / ignore / invalid. Image: bilinear (edge taps
  clamped; Pillow for uint8 RGB), float32. Dense targets: nearest. Normals are mapped by the
  forward linear part.
  """
  a = np.asarray(a, np.float64)
  h, w = example['image'].shape[:2]
  oh, ow = int(out_hw[0]), int(out_hw[1])
  x = np.arange(ow, dtype=np.float64)[None, :]
  y = np.arange(oh, dtype=np.float64)[:, None]
  sx = a[0, 0] * x + a[0, 1] * y + a[0, 2]
  sy = a[1, 0] * x + a[1, 1] * y + a[1, 2]
  rx, ry = np.floor(sx + 0.5).astype(np.int64), np.floor(sy + 0.5).astype(np.int64)
  inside = (rx >= 0) & (rx < w) & (ry >= 0) & (ry < h)
  nearest = (np.clip(ry, 0, h - 1) * w + np.clip(rx, 0, w - 1)).ravel()
  out = dict(example)
  for k in spatial_keys(example):
    v = example[k]
    if k == 'image':
      out[k] = (_bilinear_pil(v, a, (oh, ow)) if v.dtype == np.uint8 and v.ndim == 3
                and v.shape[2] == 3 else _bilinear(v, sx, sy))
      out[k][~inside] = np.asarray(image_fill, np.float32)
      continue
    g = _take_pixels(v, nearest).reshape(oh, ow, *v.shape[2:])
    g[~inside] = _PAD_VALUES.get(k, 0)
    out[k] = g
  linear = np.linalg.inv(a[:2, :2])
  return _map_normals(out, linear / np.sqrt(abs(np.linalg.det(linear))))


def _take_pixels(a: np.ndarray, flat_index: np.ndarray) -> np.ndarray:
  """a (H, W, ...)[flat pixel index] as (N, ...): one 1-D take of whole pixels (fast)."""
  h, w = a.shape[:2]
  rows = np.ascontiguousarray(a).reshape(h * w, -1)
  packed = rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel()
  return packed.take(flat_index).view(a.dtype).reshape(len(flat_index), *a.shape[2:])


def _bilinear_pil(img: np.ndarray, a: np.ndarray, out_hw) -> np.ndarray:
  """`_bilinear` by Pillow's affine transform (C, ~6x faster; results truncated to uint8).

  The source gets a one-pixel replicated border, so every tap Pillow reads for an inside
  pixel exists (the same clamping as `_bilinear`); Pillow's pixel centres are at +0.5.
  """
  padded = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode='edge')
  coeffs = [a[0, 0], a[0, 1], a[0, 2] - 0.5 * (a[0, 0] + a[0, 1]) + 1.5,
            a[1, 0], a[1, 1], a[1, 2] - 0.5 * (a[1, 0] + a[1, 1]) + 1.5]
  im = Image.fromarray(padded).transform((int(out_hw[1]), int(out_hw[0])), Image.AFFINE,
                                         coeffs, resample=Image.BILINEAR)
  return np.asarray(im, np.float32)


def _bilinear(img, sx, sy):
  """Bilinear samples of an (H, W, C) image at (sx, sy), taps clamped to the image."""
  h, w = img.shape[:2]
  sx, sy = np.clip(sx, 0, w - 1), np.clip(sy, 0, h - 1)
  x0 = np.minimum(sx.astype(np.int64), max(w - 2, 0))  # sx >= 0, so truncation is floor
  y0 = np.minimum(sy.astype(np.int64), max(h - 2, 0))
  fx = (sx - x0).astype(np.float32)[..., None]
  fy = (sy - y0).astype(np.float32)[..., None]
  dx, dy = np.minimum(x0 + 1, w - 1) - x0, (np.minimum(y0 + 1, h - 1) - y0) * w
  i00 = (y0 * w + x0).ravel()
  shape = sx.shape + img.shape[2:]

  def tap(index):
    return _take_pixels(img, index).reshape(shape).astype(np.float32)

  top = tap(i00)
  top += (tap(i00 + dx.ravel()) - top) * fx
  out = tap(i00 + dy.ravel())
  out += (tap(i00 + (dy + dx).ravel()) - out) * fx
  out -= top
  out *= fy
  out += top
  return out


# OpenCV's fixed kernels for GaussianBlur(ksize, sigma=0) with ksize <= 7.
_SMALL_GAUSSIAN = {1: [1.0], 3: [0.25, 0.5, 0.25], 5: [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16],
                   7: [1 / 64, 6 / 64, 15 / 64, 20 / 64, 15 / 64, 6 / 64, 1 / 64]}


def gaussian_kernel(ksize: int) -> np.ndarray:
  """cv2.getGaussianKernel(ksize, 0): fixed taps up to 7, else sigma = 0.3((k-1)/2-1)+0.8."""
  if ksize in _SMALL_GAUSSIAN:
    return np.asarray(_SMALL_GAUSSIAN[ksize], np.float32)
  sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
  k = np.exp(-((np.arange(ksize) - (ksize - 1) / 2) ** 2) / (2 * sigma ** 2))
  return (k / k.sum()).astype(np.float32)


def gaussian_blur(img: np.ndarray, ksize: int = 5) -> np.ndarray:
  """Separable Gaussian blur with reflect-101 borders (cv2.GaussianBlur(img, (k, k), 0))."""
  k = gaussian_kernel(ksize)
  r = ksize // 2
  x = img.astype(np.float32)
  if min(x.shape[:2]) <= r:
    return x
  p = np.pad(x, ((r, r), (0, 0), (0, 0)), mode='reflect')
  x = sum(k[i] * p[i:i + x.shape[0]] for i in range(ksize))
  p = np.pad(x, ((0, 0), (r, r), (0, 0)), mode='reflect')
  return sum(k[i] * p[:, i:i + x.shape[1]] for i in range(ksize))


def rotation_about(cx: float, cy: float, degrees: float) -> np.ndarray:
  """cv2.getRotationMatrix2D((cx, cy), degrees, 1) as a 3x3 (source -> destination)."""
  t = np.deg2rad(degrees)
  c, s = np.cos(t), np.sin(t)
  return np.array([[c, s, (1 - c) * cx - s * cy], [-s, c, s * cx + (1 - c) * cy], [0, 0, 1]])


# ---------------------------------------------------------------------------------------------
# Normalisation and output.

def normalize(example: dict, mean: Sequence[float], std: Sequence[float], bgr: bool) -> dict:
  """uint8 RGB -> float32, channel order BGR if `bgr`, (x - mean) / std in the 0-255 range."""
  out = dict(example)
  img = example['image']
  img = np.array(img[..., ::-1] if bgr else img, np.float32)
  img -= np.asarray(mean, np.float32)
  if any(v != 1 for v in std):
    img /= np.asarray(std, np.float32)
  out['image'] = img
  return out


def _finalize(example: dict, keys: Sequence[str] | None) -> dict:
  if keys is None:
    keys = [k for k, v in example.items() if isinstance(v, np.ndarray)]
  missing = [k for k in keys if k not in example]
  if missing:
    raise KeyError(f'the batch needs {missing}, but the dataset and augmentation recipe '
                   f'provide only {sorted(example)}')
  out = {}
  for k in keys:
    v = np.ascontiguousarray(example[k])
    if k == 'label':
      v = v.astype(np.int32)
    elif v.dtype == np.float64:
      v = v.astype(np.float32)
    out[k] = v
  return out


def _needed(aug, keys) -> set | None:
  """Keys the recipe reads: the requested ones, the image and the depth-SR source map."""
  if keys is None:
    return None
  return set(keys) | {'image', aug.get('dsr_key', 'depth'), 'depth_lr', 'valid'}


def make_train_transform(aug, keys: Sequence[str] | None) -> Callable:
  """Training transform from `config.dataset.augment` (fields: `jaxseg.data.recipes`).

  `keys`: the batch keys to return (None: every array the recipe produces).
  """
  from jaxseg.data import recipes  # pylint: disable=g-import-not-at-top
  step = recipes.train_step(aug)
  needed = _needed(aug, keys)

  def transform(example: dict, rng: np.random.Generator) -> dict:
    ex = {k: v for k, v in example.items() if needed is None or k in needed}
    return _finalize(normalize(step(ex, rng), aug.mean, aug.std, aug.bgr), keys)
  return transform


def make_eval_transform(aug, keys: Sequence[str] | None) -> Callable:
  """Evaluation: the whole image, normalised (plus the recipe's fixed resizes / LR inputs)."""
  from jaxseg.data import recipes  # pylint: disable=g-import-not-at-top
  step = recipes.eval_step(aug)
  needed = _needed(aug, keys)

  def transform(example: dict) -> dict:
    ex = {k: v for k, v in example.items() if needed is None or k in needed}
    return _finalize(normalize(step(ex), aug.mean, aug.std, aug.bgr), keys)
  return transform
