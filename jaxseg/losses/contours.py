"""Class-balanced binary cross-entropy for contours (PAD-Net L3), HED-style weighting.

Arrays are NHWC / NHW. `(sum, count)` building blocks plus a `global_mean` wrapper.
"""
from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from jaxseg.losses.depth import match_resolution
from jaxseg.losses.reduce import global_mean

Array = jnp.ndarray


def contour_pos_weight(target: Array, valid: Optional[Array] = None,
                       axis_name: Optional[str] = None) -> Array:
  """beta = |negatives| / |valid pixels| over the (global) batch; scalar, no gradient.

  Args:
    target: (B, H, W) edge map; pixels >= 0.5 are positive.
    valid: optional bool, broadcastable to (B, H, W).
    axis_name: when set, counts are summed over that mapped axis (pmap / shard_map).
  """
  ok = jnp.broadcast_to(True if valid is None else valid.astype(bool), target.shape)
  pos = jnp.sum(ok & (target >= 0.5), dtype=jnp.float32)
  tot = jnp.sum(ok, dtype=jnp.float32)
  if axis_name is not None:
    pos, tot = jax.lax.psum((pos, tot), axis_name)
  return jax.lax.stop_gradient((tot - pos) / jnp.maximum(tot, 1.0))


def balanced_bce_sum(logits: Array, target: Array, valid: Optional[Array] = None,
                     pos_weight: Optional[float] = None, resize: str = 'prediction',
                     align_corners: bool = False,
                     axis_name: Optional[str] = None) -> Tuple[Array, Array]:
  """Class-balanced sigmoid cross-entropy: (sum, count).

  Per valid pixel, with x the logit and beta the positive weight:
    positive: -beta * log(sigmoid(x)), negative: -(1 - beta) * log(1 - sigmoid(x)).
  count = number of valid pixels, so the mean is sum / count.

  Args:
    logits: (B, h, w) or (B, h, w, 1) contour logits.
    target: (B, H, W) edge map (uint8 or float); pixels >= 0.5 are positive.
    valid: optional bool broadcastable to (B, H, W); False pixels get exactly zero gradient.
    pos_weight: beta. None (default) computes beta = |Y-| / |Y| from the batch (HED; the
      weighting the issue asks for). MTL-PyTorch fixes beta = 0.95 [V].
    resize: see `jaxseg.losses.depth.match_resolution`.
    align_corners: bilinear convention when resizing.
    axis_name: makes the data-dependent beta global under pmap / shard_map.

  Returns:
    (sum, count), float32 scalars.
  """
  if logits.ndim == 3:
    logits = logits[..., None]
  logits, (target, valid) = match_resolution(logits, (target, valid), resize, align_corners)
  x = logits[..., 0].astype(jnp.float32)
  ok = jnp.broadcast_to(True if valid is None else valid.astype(bool), x.shape)
  positive = target >= 0.5
  beta = (contour_pos_weight(target, ok, axis_name) if pos_weight is None
          else jnp.asarray(pos_weight, jnp.float32))
  per_pixel = jnp.where(positive, beta * jax.nn.softplus(-x), (1.0 - beta) * jax.nn.softplus(x))
  return jnp.sum(jnp.where(ok, per_pixel, 0.0)), jnp.sum(ok, dtype=jnp.float32)


def balanced_bce(logits: Array, target: Array, valid: Optional[Array] = None,
                 pos_weight: Optional[float] = None, resize: str = 'prediction',
                 align_corners: bool = False, axis_name: Optional[str] = None) -> Array:
  """Mean of `balanced_bce_sum` over the valid pixels of the (global) batch; scalar."""
  return global_mean(*balanced_bce_sum(logits, target, valid, pos_weight, resize, align_corners,
                                       axis_name), axis_name)
