"""Contour F-measure (ODS / OIS) over a fixed threshold grid, as additive per-batch sums.

Thresholds t_k = k / (K + 1), k = 1..K (K = 99 by default, like seism's 99 levels). A pixel is
predicted as edge at t_k when its probability is >= t_k. Each pixel's probability is binned by the
number of thresholds it reaches, so one histogram per kind of pixel gives the counts at all K
thresholds (no K x H x W tensor).

Matching: `tolerance=0` (default) is exact pixel matching, with no boundary tolerance. With
`tolerance=r > 0` a cheap relaxed matching is used: a predicted edge pixel is a true positive if a
ground-truth edge lies in the (2r+1)x(2r+1) square around it, and a ground-truth pixel is recalled
if a predicted edge lies in the same square (max-pooling). Unlike the BSDS/seism benchmark this is
not a one-to-one (bipartite) assignment, so it is more lenient; seism uses
maxDist = 0.0075 x image diagonal (0.011 for NYUD in HED), about 6-9 px at 480x640.

ODS: F at the best single threshold for the whole dataset. OIS: precision and recall counts taken
at each image's best threshold (ties: the lowest threshold), summed, then F.
"""
from __future__ import annotations

from typing import Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.nn import resize_bilinear

Array = jnp.ndarray


def contour_thresholds(num_thresholds: int = 99) -> np.ndarray:
  """(K,) thresholds k / (K + 1), k = 1..K."""
  return np.arange(1, num_thresholds + 1, dtype=np.float32) / (num_thresholds + 1)


def _max_pool_same(x: Array, radius: int, init) -> Array:
  """(B, H, W) max over a (2r+1)^2 square window, same size."""
  k = 2 * radius + 1
  return jax.lax.reduce_window(x, init, jax.lax.max, (1, k, k), (1, 1, 1), 'SAME')


def _per_image_hist(idx: Array, select: Array, nbins: int) -> Array:
  """(B, H, W) bin index and bool selection -> (B, nbins) int32 counts."""
  b = idx.shape[0]
  flat = (idx + nbins * jnp.arange(b, dtype=jnp.int32)[:, None, None]).reshape(-1)
  hist = jnp.zeros((b * nbins,), jnp.int32).at[flat].add(select.reshape(-1).astype(jnp.int32))
  return hist.reshape(b, nbins)


def _at_least(hist: Array) -> Array:
  """(..., K+1) bin counts -> (..., K) counts with bin >= k, k = 1..K."""
  return jnp.cumsum(hist[..., ::-1], -1)[..., ::-1][..., 1:]


def _f_measure(tp_pred, n_pred, tp_gt, n_gt):
  p = tp_pred / np.maximum(n_pred, 1)
  r = tp_gt / np.maximum(n_gt, 1)
  return np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0), p, r


def contour_metric_sums(pred: Array, gt: Array, valid: Optional[Array] = None,
                        mask: Optional[Array] = None, *, num_thresholds: int = 99,
                        tolerance: int = 0, from_logits: bool = True,
                        align_corners: bool = False) -> Dict[str, Array]:
  """Per-batch contour counts.

  Args:
    pred: (B, h, w) or (B, h, w, 1) logits (from_logits=True) or probabilities; resized
      bilinearly to gt size when different (after the sigmoid).
    gt: (B, H, W) edge map; >= 0.5 is an edge.
    valid: optional (B, H, W) bool; mask: optional (B,) bool (False = padding example).
    num_thresholds: K.
    tolerance: matching radius in pixels (0 = exact pixel matching).

  Returns (all int32):
    'pred_hit' (K+1,): predicted pixels near a gt edge, binned by thresholds reached;
    'pred_miss' (K+1,): the same for pixels with no gt edge nearby;
    'gt_hit' (K+1,): gt edge pixels binned by the thresholds reached by the best prediction in
      their neighbourhood; 'num_gt': gt edge pixels;
    'ois' (4,): [matched predictions, predictions, recalled gt, gt] at each image's best
      threshold, summed over images.
  """
  if pred.ndim == 3:
    pred = pred[..., None]
  prob = jax.nn.sigmoid(pred.astype(jnp.float32)) if from_logits else pred.astype(jnp.float32)
  if prob.shape[1:3] != gt.shape[1:3]:
    prob = resize_bilinear(prob, gt.shape[1:3], align_corners=align_corners)
  prob = prob[..., 0]
  ok = jnp.broadcast_to(True if valid is None else valid.astype(bool), prob.shape)
  if mask is not None:
    ok &= mask.astype(bool)[:, None, None]
  edge = ok & (gt >= 0.5)
  nbins = num_thresholds + 1
  thr = jnp.asarray(contour_thresholds(num_thresholds))
  prob = jnp.where(ok, prob, -1.0)  # invalid pixels reach no threshold
  if tolerance > 0:
    near_gt = _max_pool_same(edge.astype(jnp.int32), tolerance, 0) > 0
    best_near = _max_pool_same(prob, tolerance, -jnp.inf)
  else:
    near_gt, best_near = edge, prob
  idx = jnp.searchsorted(thr, prob, side='right').astype(jnp.int32)
  idx_near = jnp.searchsorted(thr, best_near, side='right').astype(jnp.int32)
  hit = _per_image_hist(idx, ok & near_gt, nbins)
  miss = _per_image_hist(idx, ok & ~near_gt, nbins)
  gt_hit = _per_image_hist(idx_near, edge, nbins)
  n_gt = jnp.sum(edge, axis=(1, 2), dtype=jnp.int32)

  # OIS: per image, the counts at its best threshold.
  tp_p, fp, tp_g = _at_least(hit), _at_least(miss), _at_least(gt_hit)  # (B, K)
  n_pred = tp_p + fp
  prec = tp_p / jnp.maximum(n_pred, 1)
  rec = tp_g / jnp.maximum(n_gt, 1)[:, None]
  f = jnp.where(prec + rec > 0, 2 * prec * rec / jnp.maximum(prec + rec, 1e-12), 0.0)
  best = jnp.argmax(f, axis=1)
  take = lambda a: jnp.take_along_axis(a, best[:, None], axis=1)[:, 0]
  ois = jnp.stack([jnp.sum(take(tp_p)), jnp.sum(take(n_pred)), jnp.sum(take(tp_g)),
                   jnp.sum(n_gt)]).astype(jnp.int32)
  return {'pred_hit': hit.sum(0), 'pred_miss': miss.sum(0), 'gt_hit': gt_hit.sum(0),
          'num_gt': jnp.sum(n_gt), 'ois': ois}


def summarize_contours(sums) -> Dict[str, float]:
  """{'ods_f', 'ods_threshold', 'ods_precision', 'ods_recall', 'ois_f'} from accumulated sums."""
  hit, miss, gt_hit = (np.asarray(sums[k], np.float64) for k in ('pred_hit', 'pred_miss', 'gt_hit'))
  num_gt = float(np.asarray(sums['num_gt'], np.float64))
  at_least = lambda h: np.cumsum(h[::-1])[::-1][1:]
  tp_p, n_pred, tp_g = at_least(hit), at_least(hit) + at_least(miss), at_least(gt_hit)
  f, p, r = _f_measure(tp_p, n_pred, tp_g, num_gt)
  k = int(np.argmax(f))
  o = np.asarray(sums['ois'], np.float64)
  ois_f = float(_f_measure(o[0], o[1], o[2], o[3])[0])
  return {'ods_f': float(f[k]), 'ods_threshold': float(contour_thresholds(hit.size - 1)[k]),
          'ods_precision': float(p[k]), 'ods_recall': float(r[k]), 'ois_f': ois_f}
