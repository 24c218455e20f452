"""Masked surface-normal losses (PAD-Net L2): cosine, L1 or L2 on L2-normalised vectors.

Arrays are NHWC. `(sum, count)` building blocks plus a `global_mean` wrapper.
"""
from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from jaxseg.losses.depth import match_resolution
from jaxseg.losses.reduce import global_mean

Array = jnp.ndarray
NORMALS_KINDS = ('cosine', 'l1', 'l2')


def l2_normalize(v: Array, eps: float = 1e-12) -> Array:
  """v / max(|v|, sqrt(eps)) along the last axis; finite gradient everywhere."""
  return v * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(v), -1, keepdims=True), eps))


def valid_normals(target: Array, valid: Optional[Array] = None, min_norm: float = 1e-3) -> Array:
  """(B, H, W) bool: finite target with |n| > min_norm (zero vectors mark missing normals)."""
  ok = jnp.all(jnp.isfinite(target), -1) & (jnp.sum(jnp.square(target), -1) > min_norm ** 2)
  return ok if valid is None else ok & valid.astype(bool)


def normals_loss_sum(pred: Array, target: Array, valid: Optional[Array] = None,
                     kind: str = 'l2', resize: str = 'prediction',
                     align_corners: bool = False) -> Tuple[Array, Array]:
  """Masked normal loss on unit vectors: (sum, count).

  Args:
    pred: (B, h, w, 3) unnormalised predicted normals.
    target: (B, H, W, 3) ground-truth normals (normalised here too); zero vectors are invalid.
    valid: optional (B, H, W) bool; False pixels get exactly zero gradient.
    kind: per valid pixel, with unit vectors p, n:
      'cosine': 1 - <p, n>; count = valid pixels.
      'l1': sum_c |p_c - n_c|; count = 3 x valid pixels, i.e. the mean absolute error per
        component like PyTorch `l1_loss` over the unmasked elements (MTL-PyTorch [V]).
      'l2': |p - n|^2 = 2 (1 - <p, n>); count = valid pixels. The paper's Euclidean loss [N]
        (default; whether the paper normalised the prediction first is not known).
    resize: see `jaxseg.losses.depth.match_resolution`.
    align_corners: bilinear convention when resizing.

  Returns:
    (sum, count), float32 scalars.
  """
  if kind not in NORMALS_KINDS:
    raise ValueError(f'kind must be one of {NORMALS_KINDS}, got {kind!r}')
  pred, (target, valid) = match_resolution(pred, (target, valid), resize, align_corners)
  target = target.astype(jnp.float32)
  ok = valid_normals(target, valid)
  p = l2_normalize(pred.astype(jnp.float32))
  n = l2_normalize(jnp.where(ok[..., None], target, 0.0))
  if kind == 'cosine':
    per_pixel, per_count = 1.0 - jnp.sum(p * n, -1), 1.0
  elif kind == 'l1':
    per_pixel, per_count = jnp.sum(jnp.abs(p - n), -1), 3.0
  else:
    per_pixel, per_count = jnp.sum(jnp.square(p - n), -1), 1.0
  total = jnp.sum(jnp.where(ok, per_pixel, 0.0))
  return total, per_count * jnp.sum(ok, dtype=jnp.float32)


def normals_loss(pred: Array, target: Array, valid: Optional[Array] = None, kind: str = 'l2',
                 resize: str = 'prediction', align_corners: bool = False,
                 axis_name: Optional[str] = None) -> Array:
  """Mean of `normals_loss_sum` over the (global) batch; scalar."""
  return global_mean(*normals_loss_sum(pred, target, valid, kind, resize, align_corners),
                     axis_name)
