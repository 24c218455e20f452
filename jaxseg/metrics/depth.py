"""Depth metrics as additive per-batch sums (jit-able) plus a NumPy summary.

`depth_metric_sums` returns a pytree of float32 sums and counts that can be added across
batches and devices (`jax.tree.map(jnp.add, a, b)` or `psum`); `summarize_depth` turns the totals
into abs rel, sq rel, RMSE, RMSE log, log10, MAE and delta < 1.25^k.

Conventions (datasets.md §1.5, padnet.md §2.8-2.9):
  * Predictions are resized to the ground-truth size (bilinear by default; big_vision uses nearest).
  * Predictions are clipped to [min_depth, max_depth] (1e-3, 10). Ground truth outside
    (min_depth, max_depth) is masked out (`gt_range='mask'`, BTS `bts_eval.py`) or clipped into it
    (`gt_range='clip'`, big_vision `nyu_depth.py`); depth <= 0 is always invalid.
  * Eigen crop: the 480x640 mask [45:471, 41:601] (0-based numpy, BTS). For other sizes the
    bounds are scaled by H/480 and W/640 and rounded half up (240x320: [23:236, 21:301]).
  * Pixel-wise aggregation over all valid pixels of the set (MTL-PyTorch) is the default; the
    per-image average (each image's metric, then the mean over images; BTS) is also accumulated.
"""
from __future__ import annotations

from typing import Dict, Optional

import jax.numpy as jnp
import numpy as np

from jaxseg.nn import resize_bilinear, resize_nearest

Array = jnp.ndarray
EIGEN_CROP = (45, 471, 41, 601)  # top, bottom, left, right on 480x640 (0-based, end exclusive)
_PIXEL_TERMS = ('abs_rel', 'sq_rel', 'sq_err', 'abs_err', 'sq_log_err', 'log10_err', 'd1', 'd2',
                'd3')


def eigen_crop_mask(height: int, width: int) -> np.ndarray:
  """(H, W) bool Eigen crop, [45:471, 41:601] on 480x640, bounds scaled for other sizes."""
  top, bottom, left, right = EIGEN_CROP
  sy, sx = height / 480.0, width / 640.0
  rnd = lambda v: int(np.floor(v + 0.5))  # round half up
  mask = np.zeros((height, width), bool)
  mask[rnd(top * sy):rnd(bottom * sy), rnd(left * sx):rnd(right * sx)] = True
  return mask


def depth_metric_sums(pred: Array, gt: Array, valid: Optional[Array] = None,
                      mask: Optional[Array] = None, *, min_depth: float = 1e-3,
                      max_depth: Optional[float] = 10.0, gt_range: str = 'mask',
                      eigen_crop: bool = False, resize: str = 'bilinear',
                      align_corners: bool = False) -> Dict[str, Array]:
  """Per-batch depth sums.

  Args:
    pred: (B, h, w) or (B, h, w, 1) predicted depth (metres).
    gt: (B, H, W) ground-truth depth; <= 0 or non-finite is invalid.
    valid: optional (B, H, W) bool pixel validity.
    mask: optional (B,) bool; False marks padding examples (contribute nothing).
    min_depth, max_depth: evaluation range (max_depth None: no upper bound); min_depth > 0.
    gt_range: 'mask' drops gt outside (min_depth, max_depth); 'clip' clips valid gt into it.
    eigen_crop: restrict to the (scaled) Eigen crop.
    resize: 'bilinear' or 'nearest', used when pred and gt sizes differ.
    align_corners: bilinear convention.

  Returns:
    {'count', 'abs_rel', 'sq_rel', 'sq_err', 'abs_err', 'sq_log_err', 'log10_err', 'd1', 'd2',
     'd3'} pixel sums (scalars; counts 'count', 'd1'..'d3' int32, the rest float32) and 'image':
     the sum over images of each image's mean (float32; RMSE-type terms as per-image RMSE, keys
     'rmse', 'rmse_log' instead of 'sq_err', 'sq_log_err'), 'count' = images with a valid pixel
     (int32). Accumulate totals across many batches in float64 on the host for exactness.
  """
  if gt_range not in ('mask', 'clip'):
    raise ValueError(f"gt_range must be 'mask' or 'clip', got {gt_range!r}")
  if not min_depth > 0:
    raise ValueError('min_depth must be > 0 (logs of the prediction)')
  if pred.ndim == 3:
    pred = pred[..., None]
  big_h, big_w = gt.shape[1:3]
  if pred.shape[1:3] != (big_h, big_w):
    if resize == 'bilinear':
      pred = resize_bilinear(pred, (big_h, big_w), align_corners=align_corners)
    elif resize == 'nearest':
      pred = resize_nearest(pred, (big_h, big_w))
    else:
      raise ValueError(f"resize must be 'bilinear' or 'nearest', got {resize!r}")
  pred = pred[..., 0].astype(jnp.float32)
  gt = gt.astype(jnp.float32)

  ok = jnp.isfinite(gt) & (gt > 0)
  if gt_range == 'mask':
    ok &= gt > min_depth
    if max_depth is not None:
      ok &= gt < max_depth
  if valid is not None:
    ok &= valid.astype(bool)
  if mask is not None:
    ok &= mask.astype(bool)[:, None, None]
  if eigen_crop:
    ok &= jnp.asarray(eigen_crop_mask(big_h, big_w))[None]
  g = jnp.clip(jnp.where(ok, gt, 1.0), min_depth, max_depth)
  p = jnp.clip(jnp.where(jnp.isfinite(pred), pred, min_depth), min_depth, max_depth)

  err = p - g
  ratio = jnp.maximum(p / g, g / p)
  log_err = jnp.log(p) - jnp.log(g)
  per = {
      'abs_rel': jnp.abs(err) / g, 'sq_rel': jnp.square(err) / g, 'sq_err': jnp.square(err),
      'abs_err': jnp.abs(err), 'sq_log_err': jnp.square(log_err),
      'log10_err': jnp.abs(log_err) / np.log(10.0),
      'd1': ratio < 1.25, 'd2': ratio < 1.25 ** 2, 'd3': ratio < 1.25 ** 3,
  }
  # Counts are int32 (exact up to 2^31 pixels); error sums float32.
  per_image = {k: jnp.sum(jnp.where(ok, v, 0), axis=(1, 2),
                          dtype=jnp.int32 if v.dtype == jnp.bool_ else jnp.float32)
               for k, v in per.items()}
  n_img = jnp.sum(ok, axis=(1, 2), dtype=jnp.int32)
  sums = {k: jnp.sum(v) for k, v in per_image.items()}
  sums['count'] = jnp.sum(n_img)

  has = n_img > 0
  means = {k: v / jnp.maximum(n_img, 1).astype(jnp.float32) for k, v in per_image.items()}
  means['rmse'] = jnp.sqrt(means.pop('sq_err'))
  means['rmse_log'] = jnp.sqrt(means.pop('sq_log_err'))
  image = {k: jnp.sum(jnp.where(has, v, 0.0)) for k, v in means.items()}
  image['count'] = jnp.sum(has, dtype=jnp.int32)
  sums['image'] = image
  return sums


def summarize_depth(sums, per_image: bool = False) -> Dict[str, float]:
  """Final depth metrics from accumulated sums (NumPy, float64).

  Returns {'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'mae', 'd1', 'd2', 'd3', 'count'};
  deltas are fractions in [0, 1]. per_image=True averages per-image metrics instead.
  """
  if per_image:
    s = {k: float(np.asarray(v, np.float64)) for k, v in sums['image'].items()}
    n = max(s['count'], 1.0)
    return {'abs_rel': s['abs_rel'] / n, 'sq_rel': s['sq_rel'] / n, 'rmse': s['rmse'] / n,
            'rmse_log': s['rmse_log'] / n, 'log10': s['log10_err'] / n, 'mae': s['abs_err'] / n,
            'd1': s['d1'] / n, 'd2': s['d2'] / n, 'd3': s['d3'] / n, 'count': s['count']}
  s = {k: float(np.asarray(sums[k], np.float64)) for k in _PIXEL_TERMS + ('count',)}
  n = max(s['count'], 1.0)
  return {'abs_rel': s['abs_rel'] / n, 'sq_rel': s['sq_rel'] / n, 'rmse': np.sqrt(s['sq_err'] / n),
          'rmse_log': np.sqrt(s['sq_log_err'] / n), 'log10': s['log10_err'] / n,
          'mae': s['abs_err'] / n, 'd1': s['d1'] / n, 'd2': s['d2'] / n, 'd3': s['d3'] / n,
          'count': s['count']}
