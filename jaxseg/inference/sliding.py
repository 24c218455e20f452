"""Whole-image and sliding-window class probabilities from a logits function (NHWC, pure).

A logits function maps an image batch (N, h, w, 3) to logits (N, h', w', C) at any output stride;
these functions upsample the logits bilinearly (``align_corners`` as the reference) and return
softmax probabilities in float32.

Sliding windows follow semseg's test protocol (hszhao/semseg ``tool/test.py``, PSPNet
``scale_process.m``): an image smaller than the crop is padded to it (centred, with ``pad_value``:
0 = the mean after normalisation, as semseg pads with the mean before normalising); windows of the
crop size start every ``stride`` pixels (default ceil(2/3 crop)), the last one flush with the
border (``ceil((L - crop) / stride) + 1`` per axis, as semseg and mmseg); each window's logits are
upsampled to the crop, turned into probabilities (averaged with the flipped window's when
``flip``), summed into a canvas and divided by the count of windows covering each pixel; the
padding is cropped away.

Every window has the crop's shape, so ``logits_fn`` is traced once per call whatever the number of
windows, images or scales: windows are gathered into one batch and run in chunks of
``window_batch`` under ``lax.scan`` (one trace of the network; memory bounded by the chunk).
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.nn.resize import resize_bilinear

LogitsFn = Callable[[jax.Array], jax.Array]
PAD_POSITIONS = ('center', 'bottom_right')
STRIDE_RATE = 2.0 / 3.0


def default_stride(crop: Sequence[int], rate: float = STRIDE_RATE) -> Tuple[int, int]:
  """semseg's stride: ceil(rate * crop) per axis (crop 713 -> 476, 473 -> 316, 321 -> 214)."""
  return tuple(int(math.ceil(c * rate)) for c in crop)


def window_starts(length: int, crop: int, stride: int) -> List[int]:
  """Window start offsets along one axis of ``length`` >= ``crop`` (the last flush with the end)."""
  if length < crop or crop < 1 or stride < 1:
    raise ValueError(f'window_starts needs length >= crop >= 1 and stride >= 1, got '
                     f'{length}, {crop}, {stride}')
  n = int(math.ceil((length - crop) / stride)) + 1
  return [min(i * stride, length - crop) for i in range(n)]


def axis_counts(length: int, crop: int, stride: int) -> np.ndarray:
  """(length,) float32: how many windows along this axis cover each position."""
  counts = np.zeros(length, np.float32)
  for start in window_starts(length, crop, stride):
    counts[start:start + crop] += 1
  return counts


def count_map(size: Sequence[int], crop: Sequence[int], stride: Sequence[int]) -> np.ndarray:
  """(H, W) float32 number of windows covering each pixel of a (padded) image of ``size``; the
  windows form a grid, so it is the outer product of the per-axis counts."""
  return np.outer(axis_counts(size[0], crop[0], stride[0]),
                  axis_counts(size[1], crop[1], stride[1]))


def crop_padding(size: Sequence[int], crop: Sequence[int],
                 position: str = 'center') -> Tuple[Tuple[int, int], Tuple[int, int]]:
  """((top, bottom), (left, right)) padding that makes ``size`` at least ``crop``: semseg's
  centred split (top = pad // 2) or all at the bottom / right."""
  if position not in PAD_POSITIONS:
    raise ValueError(f'pad_position must be one of {list(PAD_POSITIONS)}, got {position!r}')
  pads = []
  for n, c in zip(size, crop):
    total = max(c - n, 0)
    before = total // 2 if position == 'center' else 0
    pads.append((before, total - before))
  return tuple(pads)


def hflip(x: jax.Array) -> jax.Array:
  """Horizontal flip of (N, H, W, ...)."""
  return jnp.flip(x, axis=2)


def logits_to_probs(logits: jax.Array, size: Sequence[int], align_corners: bool) -> jax.Array:
  """(N, h, w, C) logits -> (N, size[0], size[1], C) float32 softmax of the bilinear upsample."""
  up = resize_bilinear(logits.astype(jnp.float32), tuple(size), align_corners)
  return jax.nn.softmax(up, axis=-1)


def view_probs(logits_fn: LogitsFn, x: jax.Array, size: Sequence[int], flip: bool,
               align_corners: bool) -> jax.Array:
  """Probabilities (N, size, C) of the views x (N, h, w, 3), averaged with the flipped views'
  (flipped back) when ``flip``; one ``logits_fn`` call on the (2N or N)-image batch."""
  n = x.shape[0]
  logits = logits_fn(jnp.concatenate([x, hflip(x)]) if flip else x)
  if flip:
    logits = jnp.concatenate([logits[:n], hflip(logits[n:])])
  probs = logits_to_probs(logits, size, align_corners)
  return 0.5 * (probs[:n] + probs[n:]) if flip else probs


def whole_probs(logits_fn: LogitsFn, image: jax.Array, out_size: Optional[Sequence[int]] = None,
                flip: bool = False, align_corners: bool = False) -> jax.Array:
  """Whole-image mode: (B, H, W, 3) -> (B, out_size..., C) probabilities (default out = (H, W))."""
  out_size = tuple(out_size or image.shape[1:3])
  return view_probs(logits_fn, image, out_size, flip, align_corners)


def _chunks(xs, n: int, chunk: Optional[int]):
  """The pytree xs (leading axis n) as (steps, chunk, ...) with the last chunk zero-padded."""
  chunk = n if not chunk else min(int(chunk), n)
  steps = -(-n // chunk)
  pad = steps * chunk - n

  def split(a):
    a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)) if pad else a
    return a.reshape((steps, chunk) + a.shape[1:])

  return jax.tree_util.tree_map(split, xs)


def num_classes_of(logits_fn: LogitsFn, shape: Sequence[int], dtype) -> int:
  """C of ``logits_fn`` on an input of ``shape``, by ``jax.eval_shape`` (a trace, no compile)."""
  return jax.eval_shape(logits_fn, jax.ShapeDtypeStruct(tuple(shape), dtype)).shape[-1]


def slide_maps(logits_fn: LogitsFn, images: Sequence[jax.Array], crop: Sequence[int],
               stride: Optional[Sequence[int]] = None, flip: bool = False,
               align_corners: bool = False, pad_value: float = 0.0,
               pad_position: str = 'center', window_batch: Optional[int] = None,
               num_classes: Optional[int] = None) -> List[jax.Array]:
  """Sliding-window probabilities of several image batches in one pass of windows.

  Args:
    images: (B, H_k, W_k, 3) arrays (e.g. one image batch at several scales; B may differ).
    crop: (ch, cw) window size; stride: (sh, sw), default ``default_stride(crop)``.
    window_batch: windows per ``logits_fn`` call (0 / None: all windows of all images at once).
    num_classes: C; given, ``logits_fn`` is traced exactly once (else once more, by eval_shape,
      to size the canvas; that extra trace compiles nothing).
  Returns:
    one (B, H_k, W_k, C) float32 probability map per input, at that input's own size.
  """
  crop = tuple(int(c) for c in crop)
  stride = tuple(int(s) for s in (stride or default_stride(crop)))
  windows, bases, row_steps, plans = [], [], [], []
  offset = 0
  for image in images:
    b, h, w = image.shape[:3]
    pads = crop_padding((h, w), crop, pad_position)
    if any(p for pair in pads for p in pair):
      image = jnp.pad(image, ((0, 0),) + pads + ((0, 0),), constant_values=pad_value)
    hp, wp = image.shape[1:3]
    grid = [(y, x) for y in window_starts(hp, crop[0], stride[0])
            for x in window_starts(wp, crop[1], stride[1])]
    for i in range(b):
      for y, x in grid:
        windows.append(image[i, y:y + crop[0], x:x + crop[1]])
        bases.append(offset + (i * hp + y) * wp + x)
        row_steps.append(wp)
    plans.append((b, h, w, hp, wp, pads, offset))
    offset += b * hp * wp
  n = len(windows)
  xs = (jnp.stack(windows), jnp.asarray(bases, jnp.int32), jnp.asarray(row_steps, jnp.int32),
        jnp.ones((n,), jnp.float32))
  xs = _chunks(xs, n, window_batch)
  rows = jnp.arange(crop[0], dtype=jnp.int32)[None, :, None]
  cols = jnp.arange(crop[1], dtype=jnp.int32)[None, None, :]

  def body(canvas, chunk):
    win, base, row_step, valid = chunk
    probs = view_probs(logits_fn, win, crop, flip, align_corners) * valid[:, None, None, None]
    index = base[:, None, None] + rows * row_step[:, None, None] + cols  # flat canvas pixels
    return canvas.at[index.reshape(-1)].add(probs.reshape(-1, probs.shape[-1])), None

  if num_classes is None:
    num_classes = num_classes_of(logits_fn, xs[0].shape[1:], xs[0].dtype)
  canvas, _ = jax.lax.scan(body, jnp.zeros((offset, num_classes), jnp.float32), xs)
  maps = []
  for b, h, w, hp, wp, pads, start in plans:
    acc = canvas[start:start + b * hp * wp].reshape(b, hp, wp, num_classes)
    # The count map is the outer product of the per-axis counts: two small constants.
    row_counts = jnp.asarray(axis_counts(hp, crop[0], stride[0]))[None, :, None, None]
    col_counts = jnp.asarray(axis_counts(wp, crop[1], stride[1]))[None, None, :, None]
    acc = acc / (row_counts * col_counts)
    (top, _), (left, _) = pads
    maps.append(acc[:, top:top + h, left:left + w])
  return maps


def slide_probs(logits_fn: LogitsFn, image: jax.Array, crop: Sequence[int],
                stride: Optional[Sequence[int]] = None, out_size: Optional[Sequence[int]] = None,
                flip: bool = False, align_corners: bool = False, pad_value: float = 0.0,
                pad_position: str = 'center', window_batch: Optional[int] = None,
                num_classes: Optional[int] = None) -> jax.Array:
  """Sliding-window mode: (B, H, W, 3) -> (B, out_size..., C) probabilities (default (H, W)); the
  (H, W) probability map is resized bilinearly to ``out_size`` when that differs."""
  probs, = slide_maps(logits_fn, [image], crop, stride, flip, align_corners, pad_value,
                      pad_position, window_batch, num_classes)
  out_size = tuple(out_size or image.shape[1:3])
  if probs.shape[1:3] != out_size:
    probs = resize_bilinear(probs, out_size, align_corners)
  return probs
