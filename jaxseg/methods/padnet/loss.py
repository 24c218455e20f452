"""PAD-Net loss: the six terms L1..L6 (final depth and parsing, four intermediate tasks),
each a global mean over its valid pixels of the global batch, weighted by `config.loss.weights`.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

import jax.numpy as jnp

from jaxseg.losses.contours import balanced_bce_sum
from jaxseg.losses.depth import match_resolution, depth_loss_sum
from jaxseg.losses.normals import normals_loss_sum
from jaxseg.losses.reduce import global_mean
from jaxseg.losses.segmentation import cross_entropy_sum
from jaxseg.methods.padnet.model import INTERMEDIATE_TASKS

Array = jnp.ndarray

LOSS_TERMS = ('depth', 'parsing', 'inter_depth', 'inter_normals', 'inter_contours',
              'inter_parsing')
# Paper [N], unverified: final tasks 1, the four intermediate (auxiliary) terms 0.8.
PAPER_LOSS_WEIGHTS = {'depth': 1.0, 'parsing': 1.0, 'inter_depth': 0.8, 'inter_normals': 0.8,
                      'inter_contours': 0.8, 'inter_parsing': 0.8}
# MTL-PyTorch NYUD `pad_net+edges_normals.yml` [V]: initial predictions weighted like the finals.
SURVEY_NYUD_LOSS_WEIGHTS = {'depth': 1.0, 'parsing': 1.0, 'inter_depth': 1.0,
                            'inter_normals': 10.0, 'inter_contours': 50.0, 'inter_parsing': 1.0}


def example_mask(batch: Mapping[str, Array]) -> Optional[Array]:
  """batch['mask'] (B,) as a (B, 1, 1) bool array broadcastable to (B, H, W), or None."""
  mask = batch.get('mask')
  return None if mask is None else mask.astype(bool)[:, None, None]


def pixel_validity(batch: Mapping[str, Array]) -> Optional[Array]:
  """batch['valid'] (B, H, W) and the per-example batch['mask'] (B,) combined: a bool array
  broadcastable to (B, H, W) ((B, 1, 1) with a mask only), or None if neither is present."""
  valid = batch.get('valid')
  mask = batch.get('mask')
  if mask is None:
    return None if valid is None else valid.astype(bool)
  mask = mask.astype(bool)[:, None, None]
  return mask if valid is None else valid.astype(bool) & mask


def padnet_loss(outputs: Mapping[str, Any], batch: Mapping[str, Array],
                weights: Optional[Mapping[str, float]] = None, axis_name: Optional[str] = None, *,
                depth_kind: str = 'l2', normals_kind: str = 'l2',
                contour_pos_weight: Optional[float] = None, resize: str = 'prediction',
                align_corners: bool = False,
                ignore_label: int = 255) -> Tuple[Array, Dict[str, Array]]:
  """Weighted PAD-Net loss.

  Args:
    outputs: `PADNet` output dict.
    batch: 'depth' (B, H, W), 'label' (B, H, W), 'normals' (B, H, W, 3), 'contours' (B, H, W),
      optional 'valid' (B, H, W) bool (depth validity: restricts the depth terms only) and
      'mask' (B,) bool (padding examples: restricts every term). Each task is masked by its own
      validity: parsing by `ignore_label`, normals by their zero (undefined) vectors, contours
      nowhere else, so on Cityscapes sky and stereo holes still train parsing.
    weights: {term: w} over LOSS_TERMS ('depth', 'parsing' final; 'inter_*' intermediate);
      missing keys or w == 0 skip the term; None uses PAPER_LOSS_WEIGHTS. Terms whose output
      is absent (single-task models) are skipped.
    axis_name: pmap / shard_map axis (see `jaxseg.losses.reduce.global_mean`).
    depth_kind: 'l2' (paper Euclidean [N], default) or 'l1' (MTL-PyTorch [V]).
    normals_kind: 'l2' (paper [N], default), 'cosine' or 'l1' (MTL-PyTorch [V]).
    contour_pos_weight: None = HED class balance from the batch; MTL-PyTorch uses 0.95.
    resize: 'prediction' (upsample predictions bilinearly to the labels, MTL-PyTorch [V],
      default) or 'target' (nearest-downsample the labels to each prediction).
    ignore_label: parsing ignore value.

  Returns:
    (total, per_term): total = sum_i w_i L_i; per_term = the unweighted mean L_i of each term used.
  """
  weights = PAPER_LOSS_WEIGHTS if weights is None else weights
  unknown = set(weights) - set(LOSS_TERMS)
  if unknown:
    raise ValueError(f'unknown padnet_loss terms {sorted(unknown)}; expected {LOSS_TERMS}')
  valid, mask = pixel_validity(batch), example_mask(batch)
  inter = outputs.get('intermediate', {})
  preds = {'depth': outputs.get('depth'), 'parsing': outputs.get('logits')}
  preds.update({f'inter_{t}': inter.get(t) for t in INTERMEDIATE_TASKS})
  targets = {'depth': 'depth', 'parsing': 'label', 'normals': 'normals', 'contours': 'contours'}

  def term(task: str, pred: Array) -> Tuple[Array, Array]:
    target = batch[targets[task]]
    if task == 'depth':
      return depth_loss_sum(pred, target, valid, depth_kind, resize, align_corners)
    own = None if mask is None else jnp.broadcast_to(mask, target.shape[:3])
    if task == 'normals':
      return normals_loss_sum(pred, target, own, normals_kind, resize, align_corners)
    if task == 'contours':
      return balanced_bce_sum(pred, target, own, contour_pos_weight, resize, align_corners,
                              axis_name)
    logits, (labels, v) = match_resolution(pred, (target, own), resize, align_corners)
    return cross_entropy_sum(logits, labels, ignore_label, weights=v)

  total, per_term = jnp.zeros((), jnp.float32), {}
  for name in LOSS_TERMS:
    w = weights.get(name, 0.0)
    pred = preds[name]
    if pred is None or (isinstance(w, (int, float)) and w == 0):
      continue
    task = name[len('inter_'):] if name.startswith('inter_') else name
    if targets[task] not in batch:
      raise KeyError(f'padnet_loss term {name!r} needs batch[{targets[task]!r}]')
    per_term[name] = global_mean(*term(task, pred), axis_name)
    total = total + w * per_term[name]
  return total, per_term
