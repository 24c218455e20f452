"""DeepLab v2 (ResNet + ASPP), its two-level AdaptSegNet variant, and multi-scale input (MSC)."""
from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.backbones.resnet import ResNet
from jaxseg.heads.aspp import ASPP
from jaxseg.nn import resize_bilinear

Array = jax.Array


class DeepLabV2(nn.Module):
  """(N, H, W, 3) -> {'logits': (N, h, w, num_classes)} at output stride 8 (321 -> 41).

  Backbone: Caffe-layout dilated ResNet (ceil-mode max pool, full dilation in every block of
  layer3/layer4). ``multi_level=True`` (AdaptSegNet ``DeeplabMulti``) adds ``aspp_aux`` on layer3 and
  returns ``aux_logits`` too (same spatial size at output stride 8). ``aspp_branches=2`` reproduces
  the AdaptSegNet release (only rates 6 and 12 summed).
  """
  num_classes: int
  depth: int = 101
  width: int = 64
  layout: str = 'caffe'
  output_stride: int = 8
  bn_mode: str = 'frozen'
  aspp_rates: Sequence[int] = (6, 12, 18, 24)
  aspp_branches: Optional[int] = None
  multi_level: bool = False
  conv_impl: str = 'xla'
  dtype: Any = None
  bn_axis_name: Optional[str] = None

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Dict[str, Array]:
    feats = ResNet(depth=self.depth, width=self.width, layout=self.layout, deep_stem=False,
                   output_stride=self.output_stride, contract_dilation=False,
                   pool_ceil_mode=True, bn_mode=self.bn_mode, bn_axis_name=self.bn_axis_name,
                   conv_impl=self.conv_impl, dtype=self.dtype, name='backbone')(x, train)
    head = lambda name: ASPP(self.num_classes, rates=tuple(self.aspp_rates),
                             num_branches=self.aspp_branches, conv_impl=self.conv_impl,
                             dtype=self.dtype, name=name)
    out = {'logits': head('aspp')(feats['layer4'])}
    if self.multi_level:
      out['aux_logits'] = head('aspp_aux')(feats['layer3'])
    return out


def scaled_size(size: int, scale: float) -> int:
  """Image size at ``scale``: ``int(scale * size)`` (floor, as PyTorch ``scale_factor`` resizing)."""
  return int(scale * size)


class MultiScaleInput(nn.Module):
  """MSC wrapper: the same ``base`` (shared parameters) on the image at several scales.

  (N, H, W, 3) -> {'logits': (N, h, w, K), 'scale_logits': tuple of (N, h_s, w_s, K)}, where
  (h, w) is the logit size at scale 1.0, each scale's image is bilinearly resized to
  (int(s * H), int(s * W)), and ``logits`` is the element-wise max over scales of the per-scale
  logits bilinearly resized to (h, w). ``scale_logits`` follow ``scales`` order at their native
  sizes. Train and eval return the same dict. Parameters live under ``base``.
  """
  base: nn.Module
  scales: Sequence[float] = (1.0, 0.75, 0.5)
  align_corners: bool = False

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Dict[str, Any]:
    if 1.0 not in tuple(self.scales):
      raise ValueError(f'scales must contain 1.0 (the fusion size), got {self.scales}')
    h, w = x.shape[1:3]
    scale_logits = []
    for s in self.scales:
      xs = x
      if s != 1.0:
        xs = resize_bilinear(x, (scaled_size(h, s), scaled_size(w, s)), self.align_corners)
      scale_logits.append(self.base(xs, train=train)['logits'])
    size = scale_logits[list(self.scales).index(1.0)].shape[1:3]
    up = [l if l.shape[1:3] == size else resize_bilinear(l, size, self.align_corners)
          for l in scale_logits]
    fused = up[0]
    for l in up[1:]:
      fused = jnp.maximum(fused, l)
    return {'logits': fused, 'scale_logits': tuple(scale_logits)}
