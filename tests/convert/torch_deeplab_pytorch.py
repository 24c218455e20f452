"""A small PyTorch network with kazuto1011/deeplab-pytorch's module names and MSC semantics.

Written for jaxseg's tests from the documented facts of that codebase (not its code):
* ``DeepLabPytorchV2``: stem ``layer1.conv1.{conv,bn}`` + ceil-mode max pool; residual stages
  ``layer2..layer5`` of ``block1..blockN`` bottlenecks ``reduce`` (1x1, carries the stride),
  ``conv3x3`` (dilated), ``increase`` (1x1) and, in block1, ``shortcut`` (1x1 + BN), each a
  ``{conv, bn}`` unit; layer4 / layer5 stride 1 with dilation 2 / 4 (output stride 8); ASPP
  ``aspp.c{i}`` biased 3x3 convs (dilation = padding = rate), summed.
* ``DeepLabPytorchMSC``: ``base`` on the image and on ``F.interpolate(x, scale_factor=s,
  mode='bilinear', align_corners=False)`` for each s of ``scales`` (default 0.5, 0.75); the
  scaled logits are resized to the base logits' size (``size=``, align_corners=False) and the
  element-wise max is returned in eval mode.
``width`` and ``blocks`` are parameters so the tests stay tiny; width=64, blocks=(3, 4, 23, 3) is
the released ResNet-101 model.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ConvBn(nn.Sequential):
  """``conv`` (no bias) then ``bn`` (eps 1e-5), optionally ReLU (an unnamed-parameter module)."""

  def __init__(self, cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1,
               relu: bool = True):
    super().__init__()
    pad = dilation * (k - 1) // 2
    self.add_module('conv', nn.Conv2d(cin, cout, k, stride, pad, dilation, bias=False))
    self.add_module('bn', nn.BatchNorm2d(cout, eps=1e-5))
    if relu:
      self.add_module('relu', nn.ReLU())


class Bottleneck(nn.Module):

  def __init__(self, cin: int, cout: int, stride: int, dilation: int, shortcut: bool):
    super().__init__()
    mid = cout // 4
    self.reduce = ConvBn(cin, mid, 1, stride)
    self.conv3x3 = ConvBn(mid, mid, 3, 1, dilation)
    self.increase = ConvBn(mid, cout, 1, relu=False)
    self.shortcut = ConvBn(cin, cout, 1, stride, relu=False) if shortcut else nn.Identity()

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return F.relu(self.increase(self.conv3x3(self.reduce(x))) + self.shortcut(x))


class ResLayer(nn.Sequential):

  def __init__(self, n: int, cin: int, cout: int, stride: int, dilation: int):
    super().__init__()
    for i in range(n):
      self.add_module(f'block{i + 1}', Bottleneck(cin if i == 0 else cout, cout,
                                                  stride if i == 0 else 1, dilation, i == 0))


class Stem(nn.Sequential):

  def __init__(self, cout: int):
    super().__init__()
    self.add_module('conv1', ConvBn(3, cout, 7, 2))
    self.add_module('pool', nn.MaxPool2d(3, 2, 1, ceil_mode=True))


class ASPP(nn.Module):

  def __init__(self, cin: int, num_classes: int, rates: Sequence[int]):
    super().__init__()
    for i, r in enumerate(rates):
      self.add_module(f'c{i}', nn.Conv2d(cin, num_classes, 3, 1, r, r, bias=True))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return sum(conv(x) for conv in self.children())


class DeepLabPytorchV2(nn.Sequential):
  """(N, 3, H, W) -> logits (N, K, h, w) at output stride 8."""

  def __init__(self, num_classes: int, blocks: Sequence[int] = (1, 1, 1, 1), width: int = 64,
               rates: Sequence[int] = (6, 12, 18, 24)):
    super().__init__()
    ch = [width * 2**p for p in range(6)]
    self.add_module('layer1', Stem(ch[0]))
    self.add_module('layer2', ResLayer(blocks[0], ch[0], ch[2], 1, 1))
    self.add_module('layer3', ResLayer(blocks[1], ch[2], ch[3], 2, 1))
    self.add_module('layer4', ResLayer(blocks[2], ch[3], ch[4], 1, 2))
    self.add_module('layer5', ResLayer(blocks[3], ch[4], ch[5], 1, 4))
    self.add_module('aspp', ASPP(ch[5], num_classes, rates))


class DeepLabPytorchMSC(nn.Module):
  """Eval-mode MSC: max over the base logits and the scaled inputs' logits resized to them."""

  def __init__(self, base: nn.Module, scales: Sequence[float] = (0.5, 0.75)):
    super().__init__()
    self.base = base
    self.scales = tuple(scales)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    logits = self.base(x)
    size = logits.shape[2:]
    fused = logits
    for s in self.scales:
      scaled = self.base(F.interpolate(x, scale_factor=s, mode='bilinear', align_corners=False))
      fused = torch.maximum(fused, F.interpolate(scaled, size=size, mode='bilinear',
                                                 align_corners=False))
    return fused
