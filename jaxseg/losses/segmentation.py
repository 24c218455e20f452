"""Pixel-wise cross-entropy with an ignore label, and the DeepLab v2 multi-scale (MSC) loss.

Logits are NHWC (any float dtype; log-softmax is computed in float32), labels NHW int.
Pixels whose label is `ignore_label` or outside [0, num_classes) count as ignored: they add 0 to
the loss sum, 0 to the count and receive exactly zero gradient.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

from jaxseg import nn as jsnn
from jaxseg.losses.reduce import global_mean


def _expand_to(x, ndim):
  """Appends trailing unit axes so that a (B,) or (B, H, W) array broadcasts to `ndim` dims."""
  x = jnp.asarray(x)
  return x.reshape(x.shape + (1,) * (ndim - x.ndim))


def cross_entropy_sum(logits, labels, ignore_label: int = 255,
                      weights=None) -> Tuple[jax.Array, jax.Array]:
  """Summed pixel cross-entropy and the number of counted pixels.

  Args:
    logits: (N, H, W, K) float.
    labels: (N, H, W) int; `ignore_label` and values outside [0, K) are ignored.
    ignore_label: label value that is ignored.
    weights: optional per-pixel (N, H, W) or per-example (N,) weights, e.g. the eval padding
      mask; they scale both the sum and the count.
  Returns:
    (sum, count): float32 scalars. Divide with `reduce.global_mean`.
  """
  num_classes = logits.shape[-1]
  labels = jnp.asarray(labels)
  valid = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
  safe_labels = jnp.where(valid, labels, 0).astype(jnp.int32)  # mask before gathering
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, safe_labels[..., None], axis=-1)[..., 0]
  w = valid.astype(jnp.float32)
  if weights is not None:
    w = w * _expand_to(weights, labels.ndim).astype(jnp.float32)
  total = jnp.sum(jnp.where(valid, nll * w, 0.0))
  return total, jnp.sum(w)


def cross_entropy(logits, labels, ignore_label: int = 255, axis_name: Optional[str] = None,
                  weights=None) -> jax.Array:
  """Mean cross-entropy over valid pixels of the (global) batch; 0 if there are none.

  `logits` (N, H, W, K), `labels` (N, H, W). With `axis_name` (pmap / shard_map) the value is this
  device's share of the global mean (see `reduce.global_mean`).
  """
  total, count = cross_entropy_sum(logits, labels, ignore_label, weights)
  return global_mean(total, count, axis_name)


def resize_labels(labels, size: Sequence[int]) -> jax.Array:
  """(N, H, W) int labels -> (N, h, w) by PIL-style nearest sampling (pixel centres)."""
  size = tuple(int(s) for s in size)
  if tuple(labels.shape[1:3]) == size:
    return labels
  return jsnn.resize_nearest(labels[..., None], size)[..., 0]


def cross_entropy_at(logits, labels, ignore_label: int = 255, axis_name: Optional[str] = None,
                     at_logit_resolution: bool = True, align_corners: bool = False) -> jax.Array:
  """Mean CE of (N, h, w, K) logits against (N, H, W) labels, at one of the two resolutions.

  `at_logit_resolution=True` (DeepLab v2): labels nearest-downsampled to the logits
  (`resize_labels`); False (PSPNet, AdaptSegNet): logits bilinearly upsampled to the labels.
  """
  if at_logit_resolution:
    labels = resize_labels(labels, logits.shape[1:3])
  else:
    logits = jsnn.resize_bilinear(logits, labels.shape[1:3], align_corners)
  return cross_entropy(logits, labels, ignore_label, axis_name)


def msc_cross_entropy_terms(outputs: Mapping, labels, ignore_label: int = 255,
                            axis_name: Optional[str] = None, at_logit_resolution: bool = True,
                            align_corners: bool = False) -> Tuple[jax.Array, ...]:
  """Per-term means of the MSC loss: (fused, scale_0, scale_1, ...).

  Args:
    outputs: `MultiScaleInput` output dict: `logits` (N, h, w, K) max-fused at the 1.0x logit
      size, `scale_logits` a tuple of per-scale logits (N, h_s, w_s, K) at their native sizes.
    labels: (N, H, W) full-resolution labels; for each term they are nearest-downsampled
      (`resize_labels`) to that term's logit size (the paper's rule; `at_logit_resolution=False`
      upsamples each term's logits to the labels instead).
  """
  all_logits = (outputs['logits'],) + tuple(outputs.get('scale_logits', ()))
  return tuple(
      cross_entropy_at(lg, labels, ignore_label, axis_name, at_logit_resolution, align_corners)
      for lg in all_logits)


def msc_cross_entropy(outputs: Mapping, labels, ignore_label: int = 255,
                      axis_name: Optional[str] = None, **resize) -> jax.Array:
  """DeepLab v2 MSC training loss: the SUM of the per-term mean cross-entropies.

  With scales (1.0, 0.75, 0.5) there are four terms: the fused logits and the three scales, each
  against the labels nearest-downsampled to its own logit size (no logit upsampling).
  """
  return sum(msc_cross_entropy_terms(outputs, labels, ignore_label, axis_name, **resize))
