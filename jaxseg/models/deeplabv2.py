"""DeepLab v2 (ResNet + ASPP), its two-level AdaptSegNet variant, and multi-scale input (MSC)."""
from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.backbones.resnet import ResNet
from jaxseg.heads.aspp import ASPP
from jaxseg.nn import resize

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


def scaled_size(size: int, scale: float, rule: str = 'pytorch_scale_factor') -> int:
  """Image size at ``scale`` under a resize rule (``jaxseg.nn.resize.RESIZE_RULES``):
  ``int(scale * size)`` for 'pytorch_scale_factor' and 'size', ``p * ((size - 1) // q) + 1`` for
  'caffe_interp' with scale = p / q."""
  return resize.scaled_size(size, scale, rule)


class MultiScaleInput(nn.Module):
  """MSC wrapper: the same ``base`` (shared parameters) on the image at several scales.

  (N, H, W, 3) -> {'logits': (N, h, w, K), 'scale_logits': tuple of (N, h_s, w_s, K)}, where
  (h, w) is the logit size at scale 1.0, ``logits`` is the element-wise max over scales of the
  per-scale logits bilinearly resized to (h, w), and ``scale_logits`` follow ``scales`` order at
  their native sizes. Train and eval return the same dict. Parameters live under ``base``.

  ``resize_rule`` says how each scale's image and logits are resized, as in one reference:
    'pytorch_scale_factor' (default) deeplab-pytorch's ``MSC``: the image by
        ``F.interpolate(x, scale_factor=s, mode='bilinear', align_corners=False)`` (size
        ``int(s * H)``, samples at ``(dst + 0.5) / s - 0.5``), the logits to (h, w) by
        ``F.interpolate(size=(h, w), align_corners=False)``. The default because deeplab-pytorch
        released the PyTorch weights users load (layout ``deeplab_pytorch`` in jaxseg.convert).
    'caffe_interp' the original DeepLab v2 prototxt: Caffe ``Interp`` (shrink / zoom factors,
        size ``p * ((H - 1) // q) + 1`` for s = p / q, e.g. 321 -> 161 at 0.5, 241 at 0.75) for
        the image and ``Interp`` to the 1.0x logit size for the logits; corners aligned.
    'size' jaxseg before issue 12: size ``int(s * H)``, then a size-based resize (ratio in / out).
  ``align_corners`` None means the rule's reference convention (False, except True for
  'caffe_interp', which raises if given False); True/False overrides it for the other two rules.
  """
  base: nn.Module
  scales: Sequence[float] = (1.0, 0.75, 0.5)
  align_corners: Optional[bool] = None
  resize_rule: str = 'pytorch_scale_factor'

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Dict[str, Any]:
    if 1.0 not in tuple(self.scales):
      raise ValueError(f'scales must contain 1.0 (the fusion size), got {self.scales}')
    corners = resize.rule_align_corners(self.resize_rule, self.align_corners)
    scale_logits = []
    for s in self.scales:
      xs = resize.resize_by_scale(x, s, self.resize_rule, corners)
      scale_logits.append(self.base(xs, train=train)['logits'])
    size = scale_logits[list(self.scales).index(1.0)].shape[1:3]
    up = [l if l.shape[1:3] == size else resize.resize_bilinear(l, size, corners)
          for l in scale_logits]
    fused = up[0]
    for l in up[1:]:
      fused = jnp.maximum(fused, l)
    return {'logits': fused, 'scale_logits': tuple(scale_logits)}
