"""The one PyTorch bottleneck ResNet of jaxseg's references, with the official key names.

* `TorchResNet`: stem `conv1`/`bn1` (7x7) or `conv1..3`/`bn1..3` (deep, 3x 3x3), max pool 3/2/1
  (floor or ceil), `layer{k}.{i}.{conv,bn}{1,2,3}`, `layer{k}.0.downsample.{0,1}`, optional `fc`;
  stride on the first 1x1 ('caffe', DeepLab v2) or on the 3x3 ('pytorch', torchvision). The
  architecture and arithmetic of `jaxseg.backbones.resnet.ResNet`.
* `TorchDeepLabV2`: caffe-layout dilated ResNet (OS 8) + ASPP `layer5.conv2d_list.{0..3}` summed;
  `multi_level`: `layer5` on layer3, `layer6` on layer4 (AdaptSegNet). `MSDeepLab` wraps it as
  `Scale` so its keys carry the `Scale.` prefix of the official DeepLab v2 init files.
* `randomize(module)`: deterministic random weights and BatchNorm statistics.

Used by the benchmark references (`torch_deeplabv2`, `torch_padnet`) and by the weight-import and
equivalence tests (tests/convert). Importing this module imports torch (`torch_refs.import_torch`).
"""
import math
from typing import Callable, Dict, Optional, Sequence

from jaxseg.backbones.resnet import EXPANSION
from jaxseg.bench.torch_env import import_torch

torch = import_torch()
F = torch.nn.functional
nn = torch.nn

Norm = Callable[[int], nn.Module]


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (dilated) -> 1x1, stride on conv1 ('caffe') or conv2 ('pytorch')."""

  def __init__(self, inplanes: int, planes: int, stride: int, dilation: int, layout: str,
               downsample: bool, norm: Norm = nn.BatchNorm2d):
    super().__init__()
    s1, s3 = (stride, 1) if layout == 'caffe' else (1, stride)
    self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=s1, bias=False)
    self.bn1 = norm(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride=s3, padding=dilation, dilation=dilation,
                           bias=False)
    self.bn2 = norm(planes)
    self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
    self.bn3 = norm(planes * EXPANSION)
    self.downsample = None
    if downsample:
      self.downsample = nn.Sequential(
          nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False),
          norm(planes * EXPANSION))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = F.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    shortcut = x if self.downsample is None else self.downsample(x)
    return F.relu(y + shortcut)


class TorchResNet(nn.Module):
  """Bottleneck ResNet; `forward` returns {'stem', 'layer1'..'layer4'} (NCHW) and, with `num_fc`,
  'fc'. `channels[name]` is each map's channel count; `norm(channels)` makes every BatchNorm."""

  def __init__(self, blocks: Sequence[int] = (1, 1, 1, 1), width: int = 64,
               layout: str = 'pytorch', strides: Sequence[int] = (1, 2, 2, 2),
               dilations: Sequence[int] = (1, 1, 1, 1), ceil_mode: bool = False,
               deep_stem: bool = False, num_fc: Optional[int] = None, norm: Norm = nn.BatchNorm2d):
    super().__init__()
    if deep_stem:
      stem = ((width, 2), (width, 1), (2 * width, 1))
      self.stem = [(f'conv{i}', f'bn{i}') for i in (1, 2, 3)]
      cin = 3
      for i, (c, s) in enumerate(stem, start=1):
        setattr(self, f'conv{i}', nn.Conv2d(cin, c, 3, stride=s, padding=1, bias=False))
        setattr(self, f'bn{i}', norm(c))
        cin = c
    else:
      self.stem = [('conv1', 'bn1')]
      self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
      self.bn1 = norm(width)
      cin = width
    self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=ceil_mode)
    self.channels = {'stem': cin}
    for k, n in enumerate(blocks):
      planes = width * 2**k
      layer = []
      for i in range(n):
        layer.append(Bottleneck(cin, planes, strides[k] if i == 0 else 1, dilations[k], layout,
                                downsample=(i == 0), norm=norm))
        cin = planes * EXPANSION
      setattr(self, f'layer{k + 1}', nn.Sequential(*layer))
      self.channels[f'layer{k + 1}'] = cin
    self.fc = nn.Linear(cin, num_fc) if num_fc else None

  def features(self, x) -> Dict[str, 'torch.Tensor']:
    for conv, bn in self.stem:
      x = F.relu(getattr(self, bn)(getattr(self, conv)(x)))
    x = self.maxpool(x)
    out = {'stem': x}
    for k in range(1, 5):
      x = getattr(self, f'layer{k}')(x)
      out[f'layer{k}'] = x
    return out

  def forward(self, x) -> Dict[str, 'torch.Tensor']:
    out = self.features(x)
    if self.fc is not None:
      out['fc'] = self.fc(out['layer4'].mean(dim=(2, 3)))
    return out


class ASPP(nn.Module):
  """DeepLab v2 classifier: 3x3 convs with dilation = padding = rate, biased, outputs summed.

  `num_branches=2` sums only the first two (the AdaptSegNet release behaviour).
  """

  def __init__(self, in_ch: int, num_classes: int, rates: Sequence[int] = (6, 12, 18, 24),
               num_branches: Optional[int] = None):
    super().__init__()
    self.conv2d_list = nn.ModuleList(
        nn.Conv2d(in_ch, num_classes, 3, padding=r, dilation=r, bias=True) for r in rates)
    self.num_branches = num_branches or len(rates)

  def forward(self, x):
    out = self.conv2d_list[0](x)
    for conv in self.conv2d_list[1:self.num_branches]:
      out = out + conv(x)
    return out


class TorchDeepLabV2(TorchResNet):
  """Caffe-layout dilated ResNet (OS 8, ceil-mode pool) + ASPP `layer5`; `multi_level`: `layer5`
  on layer3, `layer6` on layer4. Returns 'logits' (+ 'aux_logits') and 'upsampled'
  (align_corners=True, to the input size) of the main logits."""

  def __init__(self, num_classes: int, blocks: Sequence[int] = (1, 1, 1, 1), width: int = 64,
               multi_level: bool = False, aspp_branches: Optional[int] = None,
               rates: Sequence[int] = (6, 12, 18, 24)):
    super().__init__(blocks, width, layout='caffe', strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),
                     ceil_mode=True)
    c4 = self.channels['layer4']
    self.multi_level = multi_level
    if multi_level:
      self.layer5 = ASPP(self.channels['layer3'], num_classes, rates, aspp_branches)
      self.layer6 = ASPP(c4, num_classes, rates, aspp_branches)
    else:
      self.layer5 = ASPP(c4, num_classes, rates, aspp_branches)

  def forward(self, x) -> Dict[str, 'torch.Tensor']:
    f = self.features(x)
    if self.multi_level:
      out = {'logits': self.layer6(f['layer4']), 'aux_logits': self.layer5(f['layer3'])}
    else:
      out = {'logits': self.layer5(f['layer4'])}
    out['upsampled'] = F.interpolate(out['logits'], size=x.shape[2:], mode='bilinear',
                                     align_corners=True)
    return out


class MSDeepLab(nn.Module):
  """Wrapper whose state_dict keys read `Scale.<key>` like the official DeepLab v2 init files."""

  def __init__(self, net: nn.Module):
    super().__init__()
    self.Scale = net  # pylint: disable=invalid-name

  def forward(self, x):
    return self.Scale(x)


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
  """Random conv/linear weights and biases, BN affine and running statistics (deterministic)."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in module.modules():
      if isinstance(m, (nn.Conv2d, nn.Linear)):
        fan_in = m.weight[0].numel()
        m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
        if m.bias is not None:
          m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
      elif isinstance(m, nn.BatchNorm2d):
        c = m.num_features
        m.weight.copy_(torch.rand(c, generator=g) + 0.5)
        m.bias.copy_(torch.randn(c, generator=g) * 0.2)
        m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
        m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
        m.num_batches_tracked.fill_(7)
  return module
