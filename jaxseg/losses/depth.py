"""Masked depth regression losses (PAD-Net L1 / L5) and the resolution matching they share.

Arrays are NHWC / NHW. Losses come as `(sum, count)` building blocks plus a mean wrapper that
divides with `jaxseg.losses.reduce.global_mean`, so jit, pmap and one device agree.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import jax.numpy as jnp

from jaxseg.losses.reduce import global_mean
from jaxseg.nn import resize_bilinear, resize_nearest

Array = jnp.ndarray
RESIZE_MODES = ('prediction', 'target')


def match_resolution(pred: Array, targets: Sequence[Optional[Array]], resize: str = 'prediction',
                     align_corners: bool = False) -> Tuple[Array, Tuple[Optional[Array], ...]]:
  """Brings a prediction and its targets to one resolution.

  Args:
    pred: (B, h, w, C) prediction.
    targets: arrays (B, H, W) or (B, H, W, C) sharing one (H, W); `None` entries pass through.
    resize: 'prediction' resizes `pred` bilinearly to (H, W) (MTL-PyTorch deep supervision,
      padnet.md §2.5); 'target' resizes every target with nearest neighbour to (h, w).
    align_corners: bilinear convention for resize='prediction'.

  Returns:
    (pred, targets) at a common resolution (unchanged when they already agree).
  """
  if resize not in RESIZE_MODES:
    raise ValueError(f'resize must be one of {RESIZE_MODES}, got {resize!r}')
  ref = next(t for t in targets if t is not None)
  (h, w), (big_h, big_w) = pred.shape[1:3], ref.shape[1:3]
  if (h, w) == (big_h, big_w):
    return pred, tuple(targets)
  if resize == 'prediction':
    return resize_bilinear(pred, (big_h, big_w), align_corners=align_corners), tuple(targets)
  out = []
  for t in targets:
    if t is None:
      out.append(None)
      continue
    x = t[..., None] if t.ndim == 3 else t
    x = resize_nearest(x.astype(jnp.int32) if x.dtype == jnp.bool_ else x, (h, w)).astype(t.dtype)
    out.append(x[..., 0] if t.ndim == 3 else x)
  return pred, tuple(out)


def valid_depth(target: Array, valid: Optional[Array] = None) -> Array:
  """(B, H, W) bool: finite depth > 0, and `valid` where given."""
  ok = jnp.isfinite(target) & (target > 0)
  return ok if valid is None else ok & valid.astype(bool)


def depth_loss_sum(pred: Array, target: Array, valid: Optional[Array] = None, kind: str = 'l2',
                   resize: str = 'prediction', align_corners: bool = False) -> Tuple[Array, Array]:
  """Masked per-pixel depth error: (sum over valid pixels, number of valid pixels).

  Args:
    pred: (B, h, w) or (B, h, w, 1) predicted depth (metres).
    target: (B, H, W) ground truth; pixels with depth <= 0 or non-finite are invalid.
    valid: optional (B, H, W) bool; False pixels are ignored (exactly zero gradient).
    kind: 'l2' (squared error; the paper's Euclidean loss [N], default) or 'l1' (absolute error,
      MTL-PyTorch [V]). 'l2' is the mean squared error, without Caffe's 1/2 factor.
    resize: see `match_resolution` ('prediction': bilinear upsampling of pred, the default).
    align_corners: bilinear convention when resizing.

  Returns:
    (sum, count), float32 scalars.
  """
  if kind not in ('l1', 'l2'):
    raise ValueError(f"kind must be 'l1' or 'l2', got {kind!r}")
  if pred.ndim == 3:
    pred = pred[..., None]
  pred, (target, valid) = match_resolution(pred, (target, valid), resize, align_corners)
  pred = pred[..., 0].astype(jnp.float32)
  target = target.astype(jnp.float32)
  ok = valid_depth(target, valid)
  diff = pred - jnp.where(ok, target, 0.0)
  per_pixel = jnp.abs(diff) if kind == 'l1' else jnp.square(diff)
  return jnp.sum(jnp.where(ok, per_pixel, 0.0)), jnp.sum(ok, dtype=jnp.float32)


def depth_loss(pred: Array, target: Array, valid: Optional[Array] = None, kind: str = 'l2',
               resize: str = 'prediction', align_corners: bool = False,
               axis_name: Optional[str] = None) -> Array:
  """Mean of `depth_loss_sum` over the valid pixels of the (global) batch; scalar."""
  return global_mean(*depth_loss_sum(pred, target, valid, kind, resize, align_corners), axis_name)
