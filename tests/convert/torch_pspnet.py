"""A small PyTorch PSPNet with hszhao/semseg's key names, for jaxseg's equivalence tests.

``TorchPSPNet``: deep stem ``layer0`` (Sequential: 3x3 s2 conv, BN, ReLU, 3x3, BN, ReLU, 3x3, BN,
ReLU, floor-mode 3x3 s2 max pool), torchvision-style bottlenecks (stride on the 3x3) with layer3 /
layer4 at stride 1 and dilation 2 / 4 (``contract_dilation``: the first block of each halves it,
as mmseg), ``ppm.features.{i}`` (adaptive avg pool, 1x1 conv, BN, ReLU, bilinear up), ``cls`` and
``aux`` (3x3 conv, BN, ReLU, Dropout2d, 1x1 conv with bias). Written from the PSPNet spec
(/work/shared/specs/pspnet.md) for the tests; widths and block counts are parameters.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from jaxseg.bench.torch_resnet import EXPANSION, Bottleneck


def _conv_bn_relu(cin, cout, k, stride=1):
  return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
          nn.BatchNorm2d(cout), nn.ReLU()]


class PPM(nn.Module):

  def __init__(self, cin: int, features: int, bins: Sequence[int], align_corners: bool):
    super().__init__()
    self.features = nn.ModuleList(
        nn.Sequential(nn.AdaptiveAvgPool2d(b), *_conv_bn_relu(cin, features, 1)) for b in bins)
    self.align_corners = align_corners

  def forward(self, x):
    out = [x] + [F.interpolate(f(x), x.shape[2:], mode='bilinear',
                               align_corners=self.align_corners) for f in self.features]
    return torch.cat(out, 1)


def _head(cin, features, num_classes, dropout):
  return nn.Sequential(*_conv_bn_relu(cin, features, 3), nn.Dropout2d(dropout),
                       nn.Conv2d(features, num_classes, 1))


class TorchPSPNet(nn.Module):
  """(N, 3, H, W) -> {'logits', 'aux_logits' (training only)} at output stride 8 (NCHW)."""

  def __init__(self, num_classes: int, blocks: Sequence[int] = (1, 1, 1, 1), width: int = 8,
               stem_width: Optional[int] = None, contract_dilation: bool = False,
               use_ppm: bool = True, bins: Sequence[int] = (1, 2, 3, 6), ppm_features: int = 0,
               head_features: int = 16, aux_features: int = 8, dropout: float = 0.1,
               align_corners: bool = True):
    super().__init__()
    sw = stem_width or width
    self.layer0 = nn.Sequential(*_conv_bn_relu(3, sw, 3, 2), *_conv_bn_relu(sw, sw, 3),
                                *_conv_bn_relu(sw, 2 * sw, 3), nn.MaxPool2d(3, 2, 1))
    inplanes = 2 * sw
    strides, dilations = (1, 2, 1, 1), (1, 1, 2, 4)
    for k, n in enumerate(blocks):
      planes, layer = width * 2**k, []
      for i in range(n):
        d = dilations[k]
        if contract_dilation and d > 1 and i == 0:
          d //= 2
        layer.append(Bottleneck(inplanes, planes, strides[k] if i == 0 else 1, d, 'pytorch',
                                downsample=(i == 0)))
        inplanes = planes * EXPANSION
      setattr(self, f'layer{k + 1}', nn.Sequential(*layer))
    c4 = inplanes
    self.use_ppm = use_ppm
    if use_ppm:
      self.ppm = PPM(c4, ppm_features or c4 // len(bins), bins, align_corners)
      c4 += len(bins) * (ppm_features or c4 // len(bins))
    self.cls = _head(c4, head_features, num_classes, dropout)
    self.aux = _head(inplanes // 2, aux_features, num_classes, dropout)

  def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
    x = self.layer1(self.layer0(x))
    x3 = self.layer3(self.layer2(x))
    x = self.layer4(x3)
    out = {'logits': self.cls(self.ppm(x) if self.use_ppm else x)}
    if self.training:
      out['aux_logits'] = self.aux(x3)
    return out
