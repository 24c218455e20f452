"""Surface-normal metrics as additive per-batch sums plus a NumPy summary.

Angular error per valid pixel in degrees, computed as atan2(|p x n|, <p, n>) on unit vectors
(accurate near 0 deg). The median comes from a fixed histogram over [0, 180] deg (linear
spreading inside the bin: error at most one bin width, 180 / num_bins deg).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import jax.numpy as jnp
import numpy as np

from jaxseg.losses.normals import l2_normalize, valid_normals
from jaxseg.nn import resize_bilinear

Array = jnp.ndarray
THRESHOLDS = (11.25, 22.5, 30.0)


def angular_error_deg(pred: Array, gt: Array) -> Array:
  """(..., 3), (..., 3) -> (...) angle in degrees between the (normalised) vectors."""
  p, n = l2_normalize(pred.astype(jnp.float32)), l2_normalize(gt.astype(jnp.float32))
  cross = jnp.linalg.norm(jnp.cross(p, n), axis=-1)
  return jnp.degrees(jnp.arctan2(cross, jnp.sum(p * n, -1)))


def normals_metric_sums(pred: Array, gt: Array, valid: Optional[Array] = None,
                        mask: Optional[Array] = None, *, num_bins: int = 1800,
                        thresholds: Sequence[float] = THRESHOLDS,
                        align_corners: bool = False) -> Dict[str, Array]:
  """Per-batch normal-error sums.

  Args:
    pred: (B, h, w, 3) unnormalised predictions (resized bilinearly to gt size if different).
    gt: (B, H, W, 3) ground truth; zero / non-finite vectors are invalid.
    valid: optional (B, H, W) bool; mask: optional (B,) bool (False = padding example).
    num_bins: histogram bins over [0, 180] deg for the median (default 0.1 deg bins).
    thresholds: angles (deg) for the 'within' counts (error < threshold).

  Returns:
    {'count' int32, 'sum' float32 (sum of angles), 'sum_sq' float32, 'within' (T,) int32,
     'hist' (num_bins,) int32}.
  """
  if pred.shape[1:3] != gt.shape[1:3]:
    pred = resize_bilinear(pred, gt.shape[1:3], align_corners=align_corners)
  ok = valid_normals(gt.astype(jnp.float32), valid)
  if mask is not None:
    ok &= mask.astype(bool)[:, None, None]
  ang = jnp.where(ok, angular_error_deg(pred, jnp.where(ok[..., None], gt, 1.0)), 0.0)
  bins = jnp.clip(jnp.floor(ang * (num_bins / 180.0)).astype(jnp.int32), 0, num_bins - 1)
  hist = jnp.zeros((num_bins,), jnp.int32).at[bins.reshape(-1)].add(
      ok.reshape(-1).astype(jnp.int32))
  within = jnp.stack([jnp.sum(ok & (ang < t), dtype=jnp.int32) for t in thresholds])
  return {'count': jnp.sum(ok, dtype=jnp.int32), 'sum': jnp.sum(ang),
          'sum_sq': jnp.sum(jnp.square(ang)), 'within': within, 'hist': hist}


def histogram_median(hist: np.ndarray, lo: float = 0.0, hi: float = 180.0) -> float:
  """Median of the values binned in `hist` (equal bins over [lo, hi]).

  The value of 0-based rank r is placed at lo + width * (b + (r + 0.5 - before_b) / hist[b]),
  spreading each bin's values evenly over it; like `np.median`, an even count averages the two
  middle ranks.
  """
  hist = np.asarray(hist, np.float64)
  n = int(round(hist.sum()))
  if n == 0:
    return float('nan')
  width = (hi - lo) / hist.size
  cum = np.cumsum(hist)

  def value(rank):
    b = int(np.searchsorted(cum, rank, side='right'))  # first bin with cum > rank
    return lo + width * (b + (rank + 0.5 - (cum[b] - hist[b])) / hist[b])

  return 0.5 * (value((n - 1) // 2) + value(n // 2))


def summarize_normals(sums, thresholds: Sequence[float] = THRESHOLDS) -> Dict[str, float]:
  """{'mean', 'median', 'rmse' (deg), 'within_<t>' (percent), 'count'} from accumulated sums."""
  n = float(np.asarray(sums['count'], np.float64))
  d = max(n, 1.0)
  out = {'mean': float(np.asarray(sums['sum'], np.float64)) / d,
         'median': histogram_median(np.asarray(sums['hist'])),
         'rmse': float(np.sqrt(np.asarray(sums['sum_sq'], np.float64) / d)), 'count': n}
  for t, c in zip(thresholds, np.asarray(sums['within'], np.float64)):
    out[f'within_{t:g}'] = 100.0 * float(c) / d
  return out
