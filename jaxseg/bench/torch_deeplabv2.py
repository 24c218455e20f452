"""PyTorch reference of jaxseg's DeepLab v2 for side-by-side step timing (issue 6).

  python -m jaxseg.bench.torch_deeplabv2 --depth=101 --batch=2 --size=321 [--msc] [--what=predict]

The network has the architecture and arithmetic of `jaxseg.models.deeplabv2` (the same as
tests/convert/torch_reference.py, which the weight-import tests verify against jaxseg): caffe-layout
dilated bottleneck ResNet (stride on the first 1x1, ceil-mode max pool, output stride 8, dilation
2/4 in every block of layer3/layer4), ASPP rates 6/12/18/24 summed (biased 3x3 convolutions),
optional multi-scale input (bilinear align_corners=False rescaling to int(s * H), max fusion at
the 1.0 logit size) with one cross-entropy term per scale plus the fused one. Train step:
forward, cross-entropy (ignore 255, labels nearest-sampled at pixel centres to the logit size),
backward, SGD with momentum 0.9 and weight decay. Inference: forward, bilinear upsampling of the
logits to the input size, argmax. BatchNorm 'train' = ordinary BN; 'frozen' = running statistics,
no gradient for its affine parameters (jaxseg's 'frozen_affine' is timed as 'train').

PyTorch is optional for jaxseg: this module imports it lazily; `available()` says whether it can.
`supports(config)` / `from_config(config, ...)` also answer for PAD-Net configs
(`config.method == 'padnet'`), whose reference is `jaxseg.bench.torch_padnet`.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import time
from typing import Optional, Sequence

STAGE_BLOCKS = {14: (1, 1, 1, 1), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
EXPANSION = 4
KNOWN_MODELS = ('deeplabv2',)


def available() -> bool:
  """True when PyTorch can be imported."""
  return importlib.util.find_spec('torch') is not None


def import_torch():
  """Imports torch. Unless set already, OMP_WAIT_POLICY=PASSIVE first: on a loaded machine
  (more runnable threads than cores) libgomp's spinning workers made the step up to 7x slower
  (measured: dilated ResNet-50, batch 2, 129x129 train step 2.4 s passive vs 17 s active, load
  average 7 on 2 cores). Not measured on an idle machine, where active waiting may be a little
  faster: set OMP_WAIT_POLICY yourself to choose."""
  os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
  import torch  # pylint: disable=g-import-not-at-top
  return torch


def supports(config) -> Optional[str]:
  """None when `config` has a PyTorch reference here, else the reason why not."""
  if config.get('method', None) == 'padnet':
    from jaxseg.bench import torch_padnet as bench_torch_padnet  # pylint: disable=g-import-not-at-top
    return bench_torch_padnet.supports(config)
  if not available():
    return 'PyTorch is not installed'
  model = config.get('model', {})
  name = model.get('name', None)
  if config.get('method', None) != 'deeplabv2' or name not in KNOWN_MODELS:
    return f'no PyTorch reference for method {config.get("method")!r} / model {name!r}'
  if model.get('layout', 'caffe') != 'caffe' or model.get('output_stride', 8) != 8:
    return 'the PyTorch reference is the caffe layout at output stride 8 only'
  if model.get('multi_level', False):
    return 'the PyTorch reference has no multi-level head'
  return None


def _build(num_classes: int, depth: int, width: int, rates: Sequence[int],
           aspp_branches: Optional[int], msc_scales: Optional[Sequence[float]], bn_mode: str):
  """The DeepLab v2 module (torch imported here)."""
  torch = import_torch()
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  class Bottleneck(nn.Module):

    def __init__(self, inplanes, planes, stride, dilation, downsample):
      super().__init__()
      self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, padding=dilation, dilation=dilation, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
      self.downsample = None
      if downsample:
        self.downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride, bias=False),
            nn.BatchNorm2d(planes * EXPANSION))

    def forward(self, x):
      y = F.relu(self.bn1(self.conv1(x)))
      y = F.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      return F.relu(y + (x if self.downsample is None else self.downsample(x)))

  class DeepLabV2(nn.Module):

    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
      self.bn1 = nn.BatchNorm2d(width)
      self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
      inplanes, layers = width, []
      for k, (n, s, d) in enumerate(zip(STAGE_BLOCKS[depth], (1, 2, 1, 1), (1, 1, 2, 4))):
        planes = width * 2**k
        blocks = []
        for i in range(n):
          blocks.append(Bottleneck(inplanes, planes, s if i == 0 else 1, d, i == 0))
          inplanes = planes * EXPANSION
        layers.append(nn.Sequential(*blocks))
      self.layers = nn.Sequential(*layers)
      self.aspp = nn.ModuleList(nn.Conv2d(inplanes, num_classes, 3, padding=r, dilation=r)
                                for r in rates)
      self.num_branches = aspp_branches or len(rates)

    def forward(self, x):
      x = self.layers(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
      out = self.aspp[0](x)
      for conv in self.aspp[1:self.num_branches]:
        out = out + conv(x)
      return out

  class MSC(nn.Module):

    def __init__(self, base):
      super().__init__()
      self.base = base

    def forward(self, x):
      h, w = x.shape[2:]
      outs = []
      for s in msc_scales:
        xs = x if s == 1.0 else F.interpolate(x, size=(int(s * h), int(s * w)),
                                              mode='bilinear', align_corners=False)
        outs.append(self.base(xs))
      size = outs[list(msc_scales).index(1.0)].shape[2:]
      fused = None
      for o in outs:
        if o.shape[2:] != size:
          o = F.interpolate(o, size=size, mode='bilinear', align_corners=False)
        fused = o if fused is None else torch.maximum(fused, o)
      return [fused] + outs

  net = DeepLabV2()
  if bn_mode == 'frozen':
    for m in net.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.weight.requires_grad_(False)
        m.bias.requires_grad_(False)
  return MSC(net) if msc_scales else net


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
    torch = import_torch()
    self.torch = torch
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.manual_seed(seed)
    self.what = what
    self.msc = bool(msc_scales)
    self.bn_mode = bn_mode
    self.model = _build(num_classes, depth, width, rates, aspp_branches, msc_scales, bn_mode)
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
        if isinstance(m, self.torch.nn.BatchNorm2d):
          m.eval()

  def _ce(self, logits, label):
    import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
    size = logits.shape[2:]
    if tuple(label.shape[1:]) != tuple(size):
      # PIL-style nearest: pixel centres (jaxseg.losses.segmentation.resize_labels).
      label = F.interpolate(label[:, None].float(), size=size, mode='nearest-exact')[:, 0]
      label = label.long()
    return F.cross_entropy(logits, label, ignore_index=255)

  def step(self) -> float:
    """Runs one step; returns its wall time in seconds."""
    torch = self.torch
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
        up = torch.nn.functional.interpolate(logits, size=self.image.shape[2:],
                                             mode='bilinear', align_corners=False)
        up.argmax(1)
    return time.perf_counter() - t0


def from_config(config, what: str = 'train', channels_last: bool = False,
                threads: Optional[int] = None, num_classes: Optional[int] = None):
  """A `TorchDeepLabBench` for a jaxseg DeepLab v2 config (see `supports`); for a PAD-Net config
  a `jaxseg.bench.torch_padnet.TorchPADNetBench`."""
  if config.get('method', None) == 'padnet':
    from jaxseg.bench import torch_padnet as bench_torch_padnet  # pylint: disable=g-import-not-at-top
    return bench_torch_padnet.from_config(config, what, channels_last=channels_last,
                                          threads=threads, num_classes=num_classes)
  why = supports(config)
  if why:
    raise ValueError(why)
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


def time_and_print(bench, warmup: int, steps: int) -> None:
  """The command lines' report: `warmup` untimed steps, then the median of `steps` timed ones."""
  for _ in range(warmup):
    bench.step()
  times = [bench.step() for _ in range(steps)]
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(f'torch {bench.torch.__version__} threads={bench.torch.get_num_threads()} '
        f'params={bench.num_params / 1e6:.2f}M: median {statistics.median(times):.3f} s/step '
        f'(steps {", ".join(f"{t:.3f}" for t in times)}); max RSS {rss:.0f} MB')


if __name__ == '__main__':
  main()
