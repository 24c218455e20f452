"""Semantic-segmentation metrics: confusion matrix (on device), IoU scores and table (NumPy).

`confusion_matrix` is jit-able and summed over batches / devices (it is an eval `sums` leaf);
`segmentation_scores` and `format_iou_table` run on the host on the summed matrix.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def confusion_matrix(pred, labels, num_classes: int, ignore_label: int = 255,
                     mask=None) -> jax.Array:
  """(K, K) int32 pixel counts: rows = ground truth, columns = prediction.

  Args:
    pred: (N, H, W) int predicted classes.
    labels: (N, H, W) int ground truth; `ignore_label` and values outside [0, K) are skipped
      (as are predictions outside [0, K)).
    num_classes: K (static under jit).
    ignore_label: ignored label value.
    mask: optional bool, (N,) per example (eval padding) or (N, H, W) per pixel.
  Note: int32 overflows beyond 2**31 pixels per cell; sum many batches on the host in int64.
  """
  k = int(num_classes)
  pred = jnp.asarray(pred).astype(jnp.int32)
  labels = jnp.asarray(labels).astype(jnp.int32)
  valid = (labels != ignore_label) & (labels >= 0) & (labels < k) & (pred >= 0) & (pred < k)
  if mask is not None:
    mask = jnp.asarray(mask)
    valid = valid & mask.reshape(mask.shape + (1,) * (labels.ndim - mask.ndim)).astype(bool)
  index = jnp.where(valid, labels * k + pred, 0).reshape(-1)
  counts = jax.ops.segment_sum(valid.astype(jnp.int32).reshape(-1), index, num_segments=k * k)
  return counts.reshape(k, k)


def _nanmean(x: np.ndarray) -> float:
  x = x[~np.isnan(x)]
  return float(x.mean()) if x.size else float('nan')


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
  out = np.full(np.shape(num), np.nan, np.float64)
  np.divide(num, den, out=out, where=den > 0)
  return out


def segmentation_scores(cm) -> Dict[str, object]:
  """Scores from a summed (K, K) confusion matrix (rows gt, cols pred), in float64.

  Returns a dict: `iou` (K,) (NaN for classes absent from both gt and prediction), `miou`
  (NaN-mean of `iou`), `class_accuracy` (K,) per-class recall (NaN for classes absent from gt),
  `mean_accuracy` (NaN-mean of it), `pixel_accuracy` (float). Fractions in [0, 1].
  """
  cm = np.asarray(cm, dtype=np.float64)
  tp = np.diag(cm)
  gt = cm.sum(axis=1)
  pr = cm.sum(axis=0)
  iou = _safe_div(tp, gt + pr - tp)
  acc = _safe_div(tp, gt)
  total = cm.sum()
  return {
      'iou': iou,
      'miou': _nanmean(iou),
      'class_accuracy': acc,
      'mean_accuracy': _nanmean(acc),
      'pixel_accuracy': float(tp.sum() / total) if total > 0 else float('nan'),
  }


def _pct(x) -> str:
  return '     n/a' if np.isnan(x) else f'{100.0 * x:8.2f}'


def format_iou_table(scores: Mapping, class_names: Optional[Sequence[str]] = None) -> str:
  """Per-class table (class, IoU %, Acc %) followed by mIoU, pixel and mean accuracy lines.

  `scores` is the dict of `segmentation_scores`; `class_names` defaults to class indices.
  NaN entries print as `n/a`. Plain text with a trailing newline, for logs and text files.
  """
  iou = np.asarray(scores['iou'], np.float64)
  acc = np.asarray(scores.get('class_accuracy', np.full_like(iou, np.nan)), np.float64)
  names = [str(n) for n in (class_names if class_names is not None else range(len(iou)))]
  if len(names) != len(iou):
    raise ValueError(f'{len(names)} class names for {len(iou)} classes')
  width = max([len(n) for n in names] + [len('pixel acc')])
  rule = '-' * (width + 16)
  lines = [f'{"class":<{width}}{"IoU %":>8}{"Acc %":>8}', rule]
  lines += [f'{n:<{width}}{_pct(i)}{_pct(a)}' for n, i, a in zip(names, iou, acc)]
  lines += [rule,
            f'{"mIoU":<{width}}{_pct(scores["miou"])}',
            f'{"pixel acc":<{width}}{_pct(scores["pixel_accuracy"])}',
            f'{"mean acc":<{width}}{_pct(scores["mean_accuracy"])}']
  return '\n'.join(lines) + '\n'
