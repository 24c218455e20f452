"""Depth super-resolution metrics: RMSE / MAD sums (per image and pixel-wise), units, border crop."""
import jax
import jax.numpy as jnp
import numpy as np


def border_mask(height: int, width: int, border: int) -> np.ndarray:
  """(H, W) bool, False on `border` pixels along every edge (NYU protocol `a[6:-6, 6:-6]`)."""
  m = np.zeros((height, width), bool)
  m[border:height - border, border:width - border] = True
  return m


def error_sums(pred, target, ok):
  """Additive RMSE / MAD sums of (B, H, W) maps over the `ok` pixels.

  Returns float32 'sq_err', 'abs_err' (pixel sums), int32 'count' (pixels), float32
  'image_rmse', 'image_mad' (sums over images of each image's RMSE / MAD) and int32 'images'
  (images with at least one pixel).
  """
  err = jnp.where(ok, pred.astype(jnp.float32) - target.astype(jnp.float32), 0.0)
  n = jnp.sum(ok, axis=(1, 2), dtype=jnp.int32)
  sq = jnp.sum(jnp.square(err), axis=(1, 2))
  ab = jnp.sum(jnp.abs(err), axis=(1, 2))
  has = n > 0
  nf = jnp.maximum(n, 1).astype(jnp.float32)
  return {'sq_err': jnp.sum(sq), 'abs_err': jnp.sum(ab), 'count': jnp.sum(n),
          'image_rmse': jnp.sum(jnp.where(has, jnp.sqrt(sq / nf), 0.0)),
          'image_mad': jnp.sum(jnp.where(has, ab / nf, 0.0)),
          'images': jnp.sum(has, dtype=jnp.int32)}


def summarize_errors(sums) -> dict:
  """`error_sums` totals -> {'rmse', 'mad' (per-image means), 'rmse_pixel', 'mad_pixel',
  'count', 'images'} as floats."""
  s = {k: float(np.asarray(v, np.float64)) for k, v in sums.items()}
  n, m = max(s['count'], 1.0), max(s['images'], 1.0)
  return {'rmse': s['image_rmse'] / m, 'mad': s['image_mad'] / m,
          'rmse_pixel': float(np.sqrt(s['sq_err'] / n)), 'mad_pixel': s['abs_err'] / n,
          'count': s['count'], 'images': s['images']}


def to_units(values, minmax, denormalize: bool, units_scale: float):
  """(B, H, W) values in the recipe's space -> reporting units (jnp or np).

  denormalize: v * (max - min) + min with `minmax` (B, 2) (the 'nyu' protocol's per-image
  min-max normalisation undone); then times `units_scale`.
  """
  xp = jnp if isinstance(values, jax.Array) else np
  if denormalize:
    lo, hi = minmax[:, 0][:, None, None], minmax[:, 1][:, None, None]
    values = values * (hi - lo) + lo
  return values * xp.float32(units_scale)
