"""The timed PyTorch PAD-Net step, next to jaxseg's (`python -m jaxseg.bench`).

  python -m jaxseg.bench.torch_padnet_bench --config=configs/padnet.py [--what=predict] [--steps=5]

Train step: forward (BatchNorm as `torch_padnet`), the `torch_padnet_loss` terms with
`config.loss.weights`, backward, and the optimizer of `config.optimizer` (torch SGD with momentum
/ Adam with L2 weight decay / AdamW, as `jaxseg.training.optimizers`). Learning-rate schedules,
parameter groups' lr_mult / weight_decay and the gradient-norm metric are not mirrored (they cost
nothing measurable). Inference: forward in eval mode, then what `PadNetMethod.predict_step`
returns: the final logits upsampled and argmaxed, the final depth, and for the full multi-task
model the upsampled unit normals and contour probabilities of the intermediate predictions.
Importing this module imports torch; `jaxseg.bench.torch_refs` answers without it.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Mapping, Optional

from jaxseg.bench.torch_padnet import build_padnet
from jaxseg.bench.torch_padnet_loss import padnet_loss
from jaxseg.bench.torch_env import OPTIMIZERS, time_and_print
from jaxseg.bench.torch_resnet import torch
from jaxseg.config_files import load_config
from jaxseg.data import sources
from jaxseg.methods.padnet.loss import PAPER_LOSS_WEIGHTS
from jaxseg.methods.padnet.model import evaluated_tasks, model_kwargs


class TorchPADNetBench:
  """One PyTorch PAD-Net with a fixed random batch; `step()` runs and times one step.

  Args:
    num_classes, batch, height, width_px: parsing classes and the random batch's shape.
    what: 'train' (forward + loss + backward + optimizer update) or 'predict'.
    model_kwargs: `build_padnet` arguments; loss_kwargs: `padnet_loss` keyword arguments
      (weights, depth_kind, normals_kind, contour_pos_weight, resize, align_corners,
      ignore_label).
    optimizer: 'sgd' (momentum, nesterov, L2 weight decay), 'adam' (L2 weight decay added to the
      gradient, as jaxseg's 'adam') or 'adamw' (decoupled decay).
    channels_last: run in torch.channels_last memory format (NHWC, like jaxseg) instead of NCHW.
    threads: torch.set_num_threads (default: os.cpu_count()).
  """

  def __init__(self, num_classes: int, batch: int, height: int, width_px: int,
               what: str = 'train', model_kwargs: Optional[Mapping[str, Any]] = None,
               loss_kwargs: Optional[Mapping[str, Any]] = None, optimizer: str = 'adam',
               lr: float = 1e-3, momentum: float = 0.9, nesterov: bool = False,
               weight_decay: float = 0.0, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
               channels_last: bool = False, threads: Optional[int] = None, seed: int = 0):
    self.torch = torch
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.manual_seed(seed)
    self.what = what
    self.model_kwargs = dict(model_kwargs or {})
    self.loss_kwargs = dict(loss_kwargs or {})
    self.tasks = evaluated_tasks(self.model_kwargs.get('tasks', 'multitask'))
    self.align_corners = self.model_kwargs.get('align_corners', False)
    self.model = build_padnet(num_classes, **self.model_kwargs)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    self.model = self.model.to(memory_format=fmt)
    g = torch.Generator().manual_seed(seed)
    shape = (batch, height, width_px)
    self.image = torch.randn(batch, 3, height, width_px, generator=g).mul_(50).contiguous(
        memory_format=fmt)
    self.batch = {
        'label': torch.randint(0, num_classes, shape, generator=g),
        'depth': torch.rand(shape, generator=g).mul_(9.5).add_(0.5),
        'normals': torch.randn(batch, 3, height, width_px, generator=g),
        'contours': (torch.rand(shape, generator=g) < 0.1).float(),
        'valid': torch.ones(shape, dtype=torch.bool)}
    params = [p for p in self.model.parameters() if p.requires_grad]
    if optimizer == 'sgd':
      self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum or 0.0,
                                       nesterov=nesterov and bool(momentum),
                                       weight_decay=weight_decay)
    elif optimizer == 'adam':
      self.optimizer = torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps,
                                        weight_decay=weight_decay)
    elif optimizer == 'adamw':
      self.optimizer = torch.optim.AdamW(params, lr=lr, betas=(b1, b2), eps=eps,
                                         weight_decay=weight_decay)
    else:
      raise ValueError(f'optimizer must be one of {OPTIMIZERS}, got {optimizer!r}')
    self.num_params = sum(p.numel() for p in self.model.parameters())
    self._set_mode()

  def _set_mode(self):
    train = self.what == 'train'
    self.model.train(train)
    if train:
      for m in self.model.modules():
        if getattr(m, 'jaxseg_bn_mode', 'train') == 'frozen':
          m.eval()

  def loss(self, outputs):
    return padnet_loss(outputs, self.batch, **self.loss_kwargs)

  def predict(self, image):
    """`PadNetMethod.predict_step` (eval mode, no autograd): dict of NHW / N3HW tensors."""
    torch = self.torch
    F = torch.nn.functional
    out = self.model(image)
    size = tuple(image.shape[2:])
    up = lambda x: x if tuple(x.shape[2:]) == size else F.interpolate(
        x, size=size, mode='bilinear', align_corners=self.align_corners)
    pred = {}
    if 'parsing' in self.tasks:
      pred['label'] = up(out['logits']).argmax(1)
    if 'depth' in self.tasks:
      pred['depth'] = up(out['depth'][:, None])[:, 0]
    if 'normals' in self.tasks:
      n = up(out['intermediate']['normals'])
      pred['normals'] = n / torch.linalg.vector_norm(n, dim=1, keepdim=True).clamp(min=1e-12)
    if 'contours' in self.tasks:
      pred['contours'] = torch.sigmoid(up(out['intermediate']['contours'][:, None]))[:, 0]
    return pred

  def step(self) -> float:
    """Runs one step; returns its wall time in seconds."""
    torch = self.torch
    t0 = time.perf_counter()
    if self.what == 'train':
      self.optimizer.zero_grad(set_to_none=True)
      total, _ = self.loss(self.model(self.image))
      total.backward()
      self.optimizer.step()
      float(total.detach())
    else:
      with torch.inference_mode():
        self.predict(self.image)
    return time.perf_counter() - t0


def from_config(config, what: str = 'train', channels_last: bool = False,
                threads: Optional[int] = None, num_classes: Optional[int] = None,
                ignore_label: int = 255) -> TorchPADNetBench:
  """A `TorchPADNetBench` for a jaxseg PAD-Net config (`torch_refs.supports` says which)."""
  h, w = config.dataset.augment.crop_size
  lc = config.get('loss', {})
  opt = config.get('optimizer', {})
  loss_kwargs = dict(
      weights=dict(lc.get('weights', PAPER_LOSS_WEIGHTS)),
      depth_kind=lc.get('depth_kind', 'l2'), normals_kind=lc.get('normals_kind', 'l2'),
      contour_pos_weight=float(lc.get('contour_pos_weight', 0.0) or 0.0) or None,
      resize=lc.get('resize', 'prediction'), align_corners=config.model.align_corners,
      ignore_label=ignore_label)
  if num_classes is None:
    num_classes = config.dataset.get('num_classes', None)
  if num_classes is None:
    num_classes = sources.make_source(config.dataset, 'train').meta['num_classes']
  return TorchPADNetBench(
      num_classes=num_classes, batch=config.batch_size, height=h, width_px=w, what=what,
      model_kwargs=model_kwargs(config.model), loss_kwargs=loss_kwargs,
      optimizer=opt.get('name', 'sgd'), lr=opt.get('learning_rate', 1e-3),
      momentum=opt.get('momentum', 0.9) or 0.0, nesterov=bool(opt.get('nesterov', False)),
      weight_decay=opt.get('weight_decay', 0.0) or 0.0, b1=opt.get('b1', 0.9),
      b2=opt.get('b2', 0.999), eps=opt.get('eps', 1e-8), channels_last=channels_last,
      threads=threads)


def main():
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--config', default='configs/padnet.py', help='path[:variants]')
  p.add_argument('--what', default='train', choices=('train', 'predict'))
  p.add_argument('--classes', type=int, default=None, help='default: the dataset\'s')
  p.add_argument('--channels_last', action='store_true')
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=1)
  a = p.parse_args()
  b = from_config(load_config(a.config), a.what, channels_last=a.channels_last,
                  num_classes=a.classes)
  time_and_print(b, a.warmup, a.steps)


if __name__ == '__main__':
  main()
