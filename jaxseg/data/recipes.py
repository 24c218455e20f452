"""The augmentation recipes behind `config.dataset.augment.recipe` (ops in `transforms`).

Fields of `config.dataset.augment` (every recipe: `crop_size` (h, w), `mean`, `std` (0-255,
per channel in the model's channel order), `bgr`, `flip`; `eval_resize_to` (h, w) resizes only
the evaluation image, targets keep their size, as AdaptSegNet evaluates):

'deeplab' (default; DeepLab v2, deeplab-pytorch): `scales` (discrete choice) or `scale_range`
  (uniform); pad bottom/right to `crop_size` with the mean / 255; random crop; flip. Computed
  as one bilinear / nearest resampling of the crop (no antialiasing, like cv2.resize), so a
  2048x1024 frame costs what its crop costs. `depth_scaling` as for 'pspnet'.
'pspnet' (semseg): scale uniform in `scale_range`; with probability `rotate_prob` a rotation by
  an angle uniform in `rotate` (degrees, about the centre, corners filled with mean / 255);
  with probability `blur_prob` a `blur_kernel` Gaussian blur of the image; flip; centred
  padding and random crop. The chain is one affine resampling of the source (semseg resamples
  twice). `depth_scaling` (default False) divides depth by the scale.
'resize' (AdaptSegNet): resize to `resize_to` (h, w), image with `image_interp` ('bicubic'),
  targets nearest; flip if `flip`; pad/crop to `crop_size` if it differs.
'zoom' (PAD-Net, MTL-PyTorch ScaleNRotate): flip; zoom about the centre by a factor from `zoom`
  (same output size), depth divided by the factor, normals unchanged; resize to `crop_size`.
'dsr' (depth super-resolution): `dsr_key` ('depth') is min-max normalised per image
  (`dsr_protocol` 'nyu', min/max kept in `minmax`) or left as is ('middlebury'); random
  `crop_size` patch (a multiple of `dsr_scale`); `flip`, `vflip`, `transpose` each with
  probability 1/2; `depth_lr` = bicubic down-sampling by `dsr_scale` (PIL for 'nyu', OpenCV
  INTER_CUBIC for 'middlebury', `formats.dsr`) and `depth_lr_up` its bicubic up-sampling.
  Min-max normalisation uses the valid pixels only (`valid`; 0 = missing in Sintel et al.).
  `structure_gt` ('' none, 'sobel', 'canny'; thresholds `structure_low` / `structure_high` as
  fractions of the largest gradient, `structure_sigma`): CTKT's SPNet target `structure`
  (H, W) {0, 1}, computed on the whole HR map, then cropped / flipped with it.
  Evaluation: the whole map cropped to a multiple of the scale; when the dataset has its own
  `depth_lr` (ToFMark) it is kept and nothing is cropped (the LR map covers the whole target).
"""
from typing import Callable, Sequence

import numpy as np

from jaxseg.data import transforms as T
from jaxseg.data.formats import dsr

RECIPE_NAMES = ('deeplab', 'pspnet', 'resize', 'zoom', 'dsr')

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


def _fail(field: str, value, why: str):
  raise ValueError(f'config.dataset.augment.{field}={value!r}: {why}')


def _pair(aug, field: str, minimum: float = 1) -> tuple:
  v = aug.get(field, None)
  if v is None or len(v) != 2 or min(v) < minimum:
    _fail(field, v, f'must be (height, width), each >= {minimum}')
  return tuple(int(x) for x in v)


def _prob(aug, field: str, default: float) -> float:
  p = float(aug.get(field, default))
  if not 0 <= p <= 1:
    _fail(field, p, 'must be a probability in [0, 1]')
  return p


def _fill(aug) -> np.ndarray:
  """The pixel mean in RGB order (the image is RGB until `normalize`)."""
  return np.asarray(aug.mean[::-1] if aug.bgr else aug.mean, np.float32)


def _interp(aug) -> str:
  interp = aug.get('image_interp', 'bilinear')
  if interp not in T.INTERPOLATIONS:
    _fail('image_interp', interp, f'must be one of {sorted(T.INTERPOLATIONS)}')
  return interp


def _scale_to_source(h, w, sh, sw) -> np.ndarray:
  """Pixel (x, y) of the image resized to (sh, sw) -> source pixel (half-pixel centres)."""
  return np.array([[w / sw, 0, 0.5 * w / sw - 0.5], [0, h / sh, 0.5 * h / sh - 0.5], [0, 0, 1]])


def _translate(x, y) -> np.ndarray:
  return np.array([[1, 0, x], [0, 1, y], [0, 0, 1]], float)


def _mirror(width) -> np.ndarray:
  return np.array([[-1, 0, width - 1], [0, 1, 0], [0, 0, 1]], float)


def _deeplab(aug) -> Callable:
  """Scale, pad bottom/right, crop, flip (deeplab-pytorch), as one resampling of the crop."""
  ch, cw = _pair(aug, 'crop_size')
  fill, scales, srange = _fill(aug), aug.get('scales') or (), aug.get('scale_range') or ()

  def step(ex, rng):
    h, w = ex['image'].shape[:2]
    s = (float(rng.choice(np.asarray(scales))) if scales else
         float(rng.uniform(srange[0], srange[1])) if srange else 1.0)
    sh, sw = max(int(h * s + 0.5), 1), max(int(w * s + 0.5), 1)
    y0 = int(rng.integers(0, max(sh, ch) - ch + 1))
    x0 = int(rng.integers(0, max(sw, cw) - cw + 1))
    m = _translate(x0, y0)
    if aug.flip and rng.random() < 0.5:
      m = m @ _mirror(cw)
    out = T.affine_warp(ex, _scale_to_source(h, w, sh, sw) @ m, (ch, cw), fill)
    return T.scale_depth(out, s) if aug.get('depth_scaling', False) else out
  return step


def _pspnet(aug) -> Callable:
  ch, cw = _pair(aug, 'crop_size')
  fill, scales, srange = _fill(aug), aug.get('scales') or (), aug.get('scale_range') or ()
  rot = tuple(aug.get('rotate', ()) or ())
  if rot and (len(rot) != 2 or rot[0] > rot[1]):
    _fail('rotate', rot, 'must be () or (min_degrees, max_degrees)')
  rot_p, blur_p = _prob(aug, 'rotate_prob', 1.0), _prob(aug, 'blur_prob', 0.0)
  ksize = int(aug.get('blur_kernel', 5))
  if ksize < 1 or ksize % 2 == 0:
    _fail('blur_kernel', ksize, 'must be an odd kernel size')

  def step(ex, rng):
    h, w = ex['image'].shape[:2]
    s = (float(rng.choice(np.asarray(scales))) if scales else
         float(rng.uniform(srange[0], srange[1])) if srange else 1.0)
    sh, sw = max(int(h * s + 0.5), 1), max(int(w * s + 0.5), 1)
    angle = float(rng.uniform(rot[0], rot[1])) if rot and rng.random() < rot_p else 0.0
    blur = blur_p > 0 and rng.random() < blur_p
    flipped = aug.flip and rng.random() < 0.5
    ph, pw = max(sh, ch), max(sw, cw)
    y0, x0 = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    # Output pixel -> padded crop -> (un)flipped -> (un)rotated -> source pixel.
    m = _translate(x0 - (pw - sw) // 2, y0 - (ph - sh) // 2)
    if flipped:
      m = _mirror(sw) @ m
    if angle:
      m = np.linalg.inv(T.rotation_about(sw / 2, sh / 2, angle)) @ m
    out = T.affine_warp(ex, _scale_to_source(h, w, sh, sw) @ m, (ch, cw), fill)
    if aug.get('depth_scaling', False):
      out = T.scale_depth(out, s)
    if blur:
      out['image'] = T.gaussian_blur(out['image'], ksize)
    return out
  return step


def _resize(aug) -> Callable:
  rh, rw = _pair(aug, 'resize_to')
  ch, cw = _pair(aug, 'crop_size')
  interp, fill = _interp(aug), _fill(aug)

  def step(ex, rng):
    ex = T.resize(ex, rh, rw, interp)
    if aug.flip:
      ex = T.random_flip(ex, rng)
    if (ch, cw) != (rh, rw):
      ex = T.random_crop(T.pad_to(ex, ch, cw, fill), rng, ch, cw)
    return ex
  return step


def _zoom(aug) -> Callable:
  ch, cw = _pair(aug, 'crop_size')
  zooms = tuple(float(z) for z in aug.get('zoom', (1.0,)) or (1.0,))
  if min(zooms) <= 0:
    _fail('zoom', zooms, 'zoom factors must be > 0')
  fill = _fill(aug)

  def step(ex, rng):
    if aug.flip:
      ex = T.random_flip(ex, rng)
    s = float(rng.choice(np.asarray(zooms)))
    h, w = ex['image'].shape[:2]
    if s != 1.0:
      cx, cy = w / 2, h / 2  # cv2.getRotationMatrix2D((w / 2, h / 2), 0, s), inverted
      m = np.array([[1 / s, 0, cx - cx / s], [0, 1 / s, cy - cy / s], [0, 0, 1]])
      ex = T.scale_depth(T.affine_warp(ex, m, (h, w), fill), s)
    return _fixed_size(ex, ch, cw)
  return step


def _fixed_size(ex, h, w):
  if ex['image'].shape[:2] == (h, w):
    return ex
  if ex['image'].dtype != np.uint8:
    ex = dict(ex, image=np.clip(np.round(ex['image']), 0, 255).astype(np.uint8))
  return T.resize(ex, h, w)


def _dsr_settings(aug):
  scale = int(aug.get('dsr_scale', 4))
  if scale not in dsr.SCALES:
    _fail('dsr_scale', scale, f'must be one of {dsr.SCALES}')
  protocol = aug.get('dsr_protocol', 'nyu')
  if protocol not in ('nyu', 'middlebury'):
    _fail('dsr_protocol', protocol, "must be 'nyu' or 'middlebury'")
  method = aug.get('structure_gt', '') or ''
  if method and method not in dsr.STRUCTURE_METHODS:
    _fail('structure_gt', method, f"must be '' (none) or one of {dsr.STRUCTURE_METHODS}")
  return aug.get('dsr_key', 'depth'), scale, protocol


def _dsr_prepare(ex, key, protocol, aug):
  """Min-max normalisation ('nyu', over the valid pixels) and the structure target."""
  if key not in ex:
    raise KeyError(f'config.dataset.augment.dsr_key={key!r}: the example has only {sorted(ex)}')
  ex = dict(ex)
  if protocol == 'nyu':
    ex[key], (lo, hi) = dsr.minmax_normalize(ex[key], ex.get('valid'))
    ex['minmax'] = np.array([lo, hi], np.float32)
  method = aug.get('structure_gt', '') or ''
  if method:
    ex['structure'] = dsr.structure_edges(
        ex[key], ex.get('valid'), method, low=float(aug.get('structure_low', 0.04)),
        high=float(aug.get('structure_high', 0.1)),
        sigma=float(aug.get('structure_sigma', 1.0)))
  return ex


def _add_lr(ex, key, scale, protocol):
  method = 'pil' if protocol == 'nyu' else 'cv2'
  lr = dsr.downsample(ex[key], scale, method)
  return dict(ex, depth_lr=lr, depth_lr_up=dsr.upsample(lr, scale, method))


def _dsr(aug) -> Callable:
  key, scale, protocol = _dsr_settings(aug)
  ch, cw = _pair(aug, 'crop_size')
  if ch % scale or cw % scale:
    _fail('crop_size', (ch, cw), f'must be a multiple of dsr_scale={scale}')
  if aug.get('transpose', False) and ch != cw:
    _fail('crop_size', (ch, cw), 'must be square when transpose=True')

  def step(ex, rng):
    ex = _dsr_prepare(ex, key, protocol, aug)
    h, w = ex['image'].shape[:2]
    if h < ch or w < cw:
      raise ValueError(f'config.dataset.augment.crop_size={(ch, cw)} is larger than an '
                       f'example ({h}x{w})')
    ex = T.random_crop(ex, rng, ch, cw)
    for axis, field in ((1, 'flip'), (0, 'vflip')):
      if aug.get(field, False):
        ex = T.random_flip(ex, rng, axis)
    if aug.get('transpose', False) and rng.random() < 0.5:
      ex = T.transpose(ex)
    return _add_lr(ex, key, scale, protocol)
  return step


_TRAIN = {'deeplab': _deeplab, 'pspnet': _pspnet, 'resize': _resize, 'zoom': _zoom,
          'dsr': _dsr}


def _recipe(aug) -> str:
  name = aug.get('recipe', 'deeplab')
  if name not in RECIPE_NAMES:
    _fail('recipe', name, f'must be one of {RECIPE_NAMES}')
  return name


def train_step(aug) -> Callable:
  """(example, rng) -> augmented example (image still in 0-255, not normalised)."""
  return _TRAIN[_recipe(aug)](aug)


def eval_step(aug) -> Callable:
  """example -> example for evaluation (whole image; the recipe's fixed resizes / LR inputs)."""
  name = _recipe(aug)
  resize_to = _pair(aug, 'eval_resize_to') if aug.get('eval_resize_to', None) else None
  interp = _interp(aug)
  size = _pair(aug, 'crop_size') if name == 'zoom' else None
  if name == 'dsr':
    key, scale, protocol = _dsr_settings(aug)

  def step(ex):
    if size:
      ex = _fixed_size(ex, *size)
    if name == 'dsr':
      ex = _dsr_prepare(ex, key, protocol, aug)
      if 'depth_lr' not in ex:
        keys = T.spatial_keys(ex)
        ex = {k: (dsr.modcrop(v, scale) if k in keys else v) for k, v in ex.items()}
        ex = _add_lr(ex, key, scale, protocol)
      # A dataset's own LR map (ToFMark) covers the whole field of view of the target: the
      # target and image stay whole (the prediction is resized to them), since cropping them
      # to a multiple of the scale while keeping the LR map whole would compare the
      # prediction, squeezed onto fewer pixels, with a shifted target.
    if resize_to:
      ex = dict(ex, image=T.resize_image(ex['image'], *resize_to, interp))
    return ex
  return step


# ---------------------------------------------------------------------------------------------
# Example -> batch entry: the recipe, normalisation, the batch keys.

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
  """Training transform from `config.dataset.augment` (fields: this module's docstring).

  `keys`: the batch keys to return (None: every array the recipe produces).
  """
  step = train_step(aug)
  needed = _needed(aug, keys)

  def transform(example: dict, rng: np.random.Generator) -> dict:
    ex = {k: v for k, v in example.items() if needed is None or k in needed}
    return _finalize(T.normalize(step(ex, rng), aug.mean, aug.std, aug.bgr), keys)
  return transform


def make_eval_transform(aug, keys: Sequence[str] | None) -> Callable:
  """Evaluation: the whole image, normalised (plus the recipe's fixed resizes / LR inputs)."""
  step = eval_step(aug)
  needed = _needed(aug, keys)

  def transform(example: dict) -> dict:
    ex = {k: v for k, v in example.items() if needed is None or k in needed}
    return _finalize(T.normalize(step(ex), aug.mean, aug.std, aug.bgr), keys)
  return transform
