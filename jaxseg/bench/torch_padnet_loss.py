"""PyTorch reference of jaxseg's PAD-Net loss (`jaxseg.methods.padnet.loss.padnet_loss`) with
NCHW / NHW tensors: depth L1/L2 and normals cosine/L1/L2 masked, class-balanced contour BCE, parsing
cross-entropy with ignore; predictions bilinearly upsampled to the labels or labels
nearest-downsampled (`resize`). Importing this module imports torch.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from jaxseg.bench.torch_resnet import F, torch
from jaxseg.methods.padnet.loss import LOSS_TERMS, PAPER_LOSS_WEIGHTS
from jaxseg.methods.padnet.model import INTERMEDIATE_TASKS


def _match(pred, targets, resize: str, align_corners: bool):
  """`jaxseg.losses.depth.match_resolution`: pred (B, C, h, w); targets (B, H, W) / (B, C, H, W)."""
  ref = next(t for t in targets if t is not None)
  (h, w), (big_h, big_w) = tuple(pred.shape[2:]), tuple(ref.shape[-2:])
  if (h, w) == (big_h, big_w):
    return pred, tuple(targets)
  if resize == 'prediction':
    return F.interpolate(pred, size=(big_h, big_w), mode='bilinear',
                         align_corners=align_corners), tuple(targets)
  out = []
  for t in targets:
    if t is None:
      out.append(None)
      continue
    x = t[:, None] if t.ndim == 3 else t
    x = F.interpolate(x.float(), size=(h, w), mode='nearest-exact').to(t.dtype)
    out.append(x[:, 0] if t.ndim == 3 else x)
  return pred, tuple(out)


def _mean(total, ok):
  return total / ok.sum().float().clamp(min=1.0)


def _l2_normalize(v, eps: float = 1e-12):
  return v * torch.rsqrt(v.square().sum(1, keepdim=True).clamp(min=eps))


def padnet_loss(outputs: Mapping[str, Any], batch: Mapping[str, Any],
                weights: Optional[Mapping[str, float]] = None, *, depth_kind: str = 'l2',
                normals_kind: str = 'l2', contour_pos_weight: Optional[float] = None,
                resize: str = 'prediction', align_corners: bool = False,
                ignore_label: int = 255):
  """(total, {term: mean}) as jaxseg's `padnet_loss`; batch 'depth' (B, H, W), 'label' (B, H, W)
  int64, 'normals' (B, 3, H, W), 'contours' (B, H, W), optional 'valid' (B, H, W) bool (depth
  validity: the depth terms only; normals skip zero vectors, parsing the ignore label)."""
  weights = PAPER_LOSS_WEIGHTS if weights is None else weights
  valid = batch.get('valid')
  inter = outputs.get('intermediate', {})
  preds = {'depth': outputs.get('depth'), 'parsing': outputs.get('logits')}
  preds.update({f'inter_{t}': inter.get(t) for t in INTERMEDIATE_TASKS})

  def all_ok(shape):  # each task has its own validity: `valid` is depth's alone
    return torch.ones(shape, dtype=torch.bool)

  def depth(pred):
    pred, (target, v) = _match(pred[:, None], (batch['depth'], valid), resize, align_corners)
    pred = pred[:, 0]
    ok = torch.isfinite(target) & (target > 0)
    ok = ok if v is None else ok & v.bool()
    diff = pred - torch.where(ok, target, 0.0)
    per_pixel = diff.abs() if depth_kind == 'l1' else diff.square()
    return _mean(torch.where(ok, per_pixel, 0.0).sum(), ok)

  def normals(pred):
    pred, (target, v) = _match(pred, (batch['normals'], None), resize, align_corners)
    ok = torch.isfinite(target).all(1) & (target.square().sum(1) > 1e-3**2)
    ok = ok if v is None else ok & v.bool()
    p = _l2_normalize(pred)
    n = _l2_normalize(torch.where(ok[:, None], target, 0.0))
    if normals_kind == 'cosine':
      per_pixel, per_count = 1.0 - (p * n).sum(1), 1.0
    elif normals_kind == 'l1':
      per_pixel, per_count = (p - n).abs().sum(1), 3.0
    else:
      per_pixel, per_count = (p - n).square().sum(1), 1.0
    total = torch.where(ok, per_pixel, 0.0).sum()
    return total / (per_count * ok.sum().float()).clamp(min=1.0)

  def contours(pred):
    pred, (target, v) = _match(pred[:, None], (batch['contours'], None), resize, align_corners)
    x = pred[:, 0]
    ok = all_ok(x.shape) if v is None else v.bool()
    positive = target >= 0.5
    if contour_pos_weight is None:
      tot = ok.sum().float()
      beta = (tot - (ok & positive).sum().float()) / tot.clamp(min=1.0)
    else:
      beta = torch.tensor(float(contour_pos_weight))
    per_pixel = torch.where(positive, beta * F.softplus(-x), (1.0 - beta) * F.softplus(x))
    return _mean(torch.where(ok, per_pixel, 0.0).sum(), ok)

  def parsing(pred):
    logits, (labels, v) = _match(pred, (batch['label'], None), resize, align_corners)
    k = logits.shape[1]
    lab_ok = (labels != ignore_label) & (labels >= 0) & (labels < k)
    nll = F.cross_entropy(logits, torch.where(lab_ok, labels, 0), reduction='none')
    w = lab_ok.float() if v is None else lab_ok.float() * v.float()
    return torch.where(lab_ok, nll * w, 0.0).sum() / w.sum().clamp(min=1.0)

  fns = {'depth': depth, 'normals': normals, 'contours': contours, 'parsing': parsing}
  total, per_term = 0.0, {}
  for name in LOSS_TERMS:
    w = float(weights.get(name, 0.0))
    pred = preds[name]
    if pred is None or w == 0:
      continue
    task = name[len('inter_'):] if name.startswith('inter_') else name
    per_term[name] = fns[task](pred)
    total = total + w * per_term[name]
  return total, per_term
