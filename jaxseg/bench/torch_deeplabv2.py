"""PyTorch reference of jaxseg's DeepLab v2 for side-by-side step timing (issue 6).

  python -m jaxseg.bench.torch_deeplabv2 --depth=101 --batch=2 --size=321 [--msc] [--what=predict]

The network is `jaxseg.bench.torch_resnet.TorchDeepLabV2` (the one the weight-import tests verify
against jaxseg): caffe-layout dilated bottleneck ResNet (stride on the first 1x1, ceil-mode max
pool, output stride 8, dilation 2/4 in every block of layer3/layer4), ASPP rates 6/12/18/24
summed (biased 3x3 convolutions), optional multi-scale input (bilinear align_corners=False
rescaling to int(s * H), max fusion at the 1.0 logit size) with one cross-entropy term per scale
plus the fused one. Train step: forward, cross-entropy (ignore 255, labels nearest-sampled at
pixel centres to the logit size), backward, SGD with momentum 0.9 and weight decay. Inference:
forward, bilinear upsampling of the logits to the input size, argmax. BatchNorm 'train' =
ordinary BN; 'frozen' = running statistics, no gradient for its affine parameters (jaxseg's
'frozen_affine' is timed as 'train').

Importing this module imports torch; `jaxseg.bench.torch_refs` answers without it.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Optional, Sequence

from jaxseg.backbones.resnet import STAGE_BLOCKS
from jaxseg.bench.torch_env import time_and_print
from jaxseg.bench.torch_resnet import F, TorchDeepLabV2, nn, torch


class MSC(nn.Module):
  """Multi-scale input: [fused (max at the 1.0 logit size)] + one logit map per scale."""

  def __init__(self, base: nn.Module, scales: Sequence[float]):
    super().__init__()
    self.base = base
    self.scales = tuple(scales)

  def forward(self, x):
    h, w = x.shape[2:]
    outs = []
    for s in self.scales:
      xs = x if s == 1.0 else F.interpolate(x, size=(int(s * h), int(s * w)), mode='bilinear',
                                            align_corners=False)
      outs.append(self.base(xs))
    size = outs[self.scales.index(1.0)].shape[2:]
    fused = None
    for o in outs:
      if o.shape[2:] != size:
        o = F.interpolate(o, size=size, mode='bilinear', align_corners=False)
      fused = o if fused is None else torch.maximum(fused, o)
    return [fused] + outs


class _Logits(nn.Module):
  """TorchDeepLabV2's main logits only (what the timed step uses)."""

  def __init__(self, net: nn.Module):
    super().__init__()
    self.net = net

  def forward(self, x):
    f = self.net.features(x)
    return self.net.layer5(f['layer4'])


class TorchDeepLabBench:
  """One PyTorch DeepLab v2 with a fixed random batch; `step()` runs and times one step.

  Args:
    what: 'train' (forward + loss + backward + SGD momentum update) or 'predict'.
    channels_last: run in torch.channels_last memory format (NHWC, like jaxseg) instead of NCHW.
    threads: torch.set_num_threads (default: os.cpu_count()).
  """

  def __init__(self, num_classes: int, batch: int, height: int, width_px: int,
               what: str = 'train', depth: int = 101, width: int = 64,
               rates: Sequence[int] = (6, 12, 18, 24), aspp_branches: Optional[int] = None,
               msc_scales: Optional[Sequence[float]] = None, bn_mode: str = 'train',
               lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 5e-4,
               channels_last: bool = False, threads: Optional[int] = None, seed: int = 0):
    self.torch = torch
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.manual_seed(seed)
    self.what = what
    self.msc = bool(msc_scales)
    self.bn_mode = bn_mode
    net = _Logits(TorchDeepLabV2(num_classes, STAGE_BLOCKS[depth], width,
                                 aspp_branches=aspp_branches, rates=rates))
    if bn_mode == 'frozen':
      for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
          m.weight.requires_grad_(False)
          m.bias.requires_grad_(False)
    self.model = MSC(net, msc_scales) if msc_scales else net
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    self.model = self.model.to(memory_format=fmt)
    g = torch.Generator().manual_seed(seed)
    self.image = torch.randn(batch, 3, height, width_px, generator=g).mul_(50).contiguous(
        memory_format=fmt)
    self.label = torch.randint(0, num_classes, (batch, height, width_px), generator=g)
    self.optimizer = torch.optim.SGD([p for p in self.model.parameters() if p.requires_grad],
                                     lr=lr, momentum=momentum, weight_decay=weight_decay)
    self.num_params = sum(p.numel() for p in self.model.parameters())
    self._set_mode()

  def _set_mode(self):
    train = self.what == 'train'
    self.model.train(train)
    if train and self.bn_mode == 'frozen':
      for m in self.model.modules():
        if isinstance(m, nn.BatchNorm2d):
          m.eval()

  def _ce(self, logits, label):
    size = logits.shape[2:]
    if tuple(label.shape[1:]) != tuple(size):
      # PIL-style nearest: pixel centres (jaxseg.losses.segmentation.resize_labels).
      label = F.interpolate(label[:, None].float(), size=size, mode='nearest-exact')[:, 0]
      label = label.long()
    return F.cross_entropy(logits, label, ignore_index=255)

  def step(self) -> float:
    """Runs one step; returns its wall time in seconds."""
    t0 = time.perf_counter()
    if self.what == 'train':
      self.optimizer.zero_grad(set_to_none=True)
      out = self.model(self.image)
      outs = out if self.msc else [out]
      loss = sum(self._ce(o, self.label) for o in outs)
      loss.backward()
      self.optimizer.step()
      float(loss.detach())
    else:
      with torch.inference_mode():
        out = self.model(self.image)
        logits = out[0] if self.msc else out
        up = F.interpolate(logits, size=self.image.shape[2:], mode='bilinear',
                           align_corners=False)
        up.argmax(1)
    return time.perf_counter() - t0


def from_config(config, what: str = 'train', channels_last: bool = False,
                threads: Optional[int] = None, num_classes: Optional[int] = None):
  """A `TorchDeepLabBench` for a jaxseg DeepLab v2 config (`torch_refs.supports` says which)."""
  m = config.model
  h, w = config.dataset.augment.crop_size
  opt = config.get('optimizer', {})
  return TorchDeepLabBench(
      num_classes=num_classes or 21, batch=config.batch_size, height=h, width_px=w, what=what,
      depth=m.depth, width=m.width, rates=tuple(m.aspp_rates),
      aspp_branches=m.get('aspp_branches', 0) or None,
      msc_scales=tuple(m.msc_scales) if m.get('msc', False) else None,
      bn_mode='frozen' if m.bn_mode == 'frozen' else 'train',
      lr=opt.get('learning_rate', 1e-3), momentum=opt.get('momentum', 0.9) or 0.0,
      weight_decay=opt.get('weight_decay', 0.0) or 0.0, channels_last=channels_last,
      threads=threads)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--depth', type=int, default=101)
  p.add_argument('--width', type=int, default=64)
  p.add_argument('--batch', type=int, default=2)
  p.add_argument('--size', type=str, default='321', help='H or H,W')
  p.add_argument('--classes', type=int, default=21)
  p.add_argument('--msc', action='store_true')
  p.add_argument('--bn_mode', default='train', choices=('train', 'frozen'))
  p.add_argument('--what', default='train', choices=('train', 'predict'))
  p.add_argument('--channels_last', action='store_true')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=1)
  a = p.parse_args()
  hw = [int(v) for v in a.size.split(',')]
  h, w = (hw[0], hw[0]) if len(hw) == 1 else hw
  b = TorchDeepLabBench(a.classes, a.batch, h, w, a.what, a.depth, a.width,
                        msc_scales=(1.0, 0.75, 0.5) if a.msc else None, bn_mode=a.bn_mode,
                        channels_last=a.channels_last)
  time_and_print(b, a.warmup, a.steps)


if __name__ == '__main__':
  main()
