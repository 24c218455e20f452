"""PyTorch reference of jaxseg's PAD-Net for side-by-side step timing (issue 6).

  python -m jaxseg.bench.torch_padnet --config=configs/padnet.py [--what=predict] [--steps=5]

`jaxseg.bench` times it next to the JAX step (`bench_torch.supports` / `from_config` dispatch
here for `config.method == 'padnet'`). The network has the architecture and arithmetic of
`jaxseg.methods.padnet.model.PADNet` for the config given, with the same module names (so that
`load_flax_variables` copies a Flax variables tree into it 1:1; tests/test_benchmark.py checks
the parameter count and the outputs against JAX):
  front-end   bottleneck ResNet (jaxseg.backbones.resnet): 'pytorch' (stride on the 3x3) or
              'caffe' (stride on the first 1x1) layout, 7x7 or deep (3x 3x3) stem, max pool 3/2/1
              with floor or ceil rounding, output stride 8/16/32 by dilation (full dilation in
              every block); every map of `aggregate_layers` through 1x1 conv + BN + ReLU, bilinear
              to the layer4 size, concatenated onto layer4.
  branches    per intermediate task a stride-2 transposed conv (ConvTranspose2d(k, 2, k/2 - 1),
              no bias; jaxseg's 'SAME' kernel spatially flipped) + BN + ReLU, N or N/2 channels,
              then a biased 1x1 prediction conv.
  distillation 'none' | 'A' (concatenation) | 'B' (message passing) | 'C' (gated, gate from the
              target or the source task), 3x3 convs without bias, on the re-embedded predictions
              (1x1 conv + BN + ReLU) or the branch features (`distill_input`).
  decoders    two transposed convs + BN + ReLU (N/2, N/4), a biased 1x1 prediction conv, bilinear
              to the input size when it differs. Single-task / direct multi-task variants too.
Train step: forward (BatchNorm in train mode; 'frozen' = running statistics and no affine
gradient, 'frozen_affine' = batch statistics and no affine gradient, as jaxseg.nn.BatchNorm), the
`padnet_loss` terms (depth L1/L2 and normals cosine/L1/L2 masked, class-balanced contour BCE,
parsing cross-entropy with ignore; predictions bilinearly upsampled to the labels or labels
nearest-downsampled, `config.loss.resize`) with `config.loss.weights`, backward, and the
optimizer of `config.optimizer` (torch SGD with momentum / Adam with L2 weight decay / AdamW, as
`jaxseg.training.optimizers`). Learning-rate schedules, parameter groups' lr_mult / weight_decay and
the gradient-norm metric are not mirrored (they cost nothing measurable). Inference: forward in
eval mode, then what `PadNetMethod.predict_step` returns: the final logits upsampled and argmaxed,
the final depth, and for the full multi-task model the upsampled unit normals and contour
probabilities of the intermediate predictions.

PyTorch is optional for jaxseg: it is imported lazily (`jaxseg.bench.torch_deeplabv2.import_torch`).
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from jaxseg.backbones.resnet import (EXPANSION, LAYOUTS, STAGE_BLOCKS, block_dilations,
                                     stage_strides_dilations)
from jaxseg.bench.torch_deeplabv2 import available, import_torch, time_and_print
from jaxseg.methods.padnet.loss import LOSS_TERMS, PAPER_LOSS_WEIGHTS
from jaxseg.methods.padnet.model import DISTILL_INPUTS, FINAL_TASKS, INTERMEDIATE_TASKS, TASK_MODES
from jaxseg.heads.padnet_distillation import DISTILLATION_MODES, GATE_SOURCES
from jaxseg.nn.norm import BN_MODES

FEATURE_MAPS = ('stem', 'layer1', 'layer2', 'layer3', 'layer4')
OPTIMIZERS = ('sgd', 'adam', 'adamw')


def evaluated_tasks(tasks: str) -> tuple:
  """Tasks whose predictions `PadNetMethod.predict_step` returns (jaxseg.methods.padnet)."""
  return {'multitask': ('parsing', 'depth', 'normals', 'contours'), 'depth': ('depth',),
          'parsing': ('parsing',), 'depth_parsing': ('parsing', 'depth')}[tasks]


def supports(config) -> Optional[str]:
  """None when `config` (a PAD-Net config) has this PyTorch reference, else the reason why not."""
  if not available():
    return 'PyTorch is not installed'
  model = config.get('model', {})
  name = model.get('name', None)
  if config.get('method', None) != 'padnet' or name != 'padnet':
    return f'no PyTorch reference for method {config.get("method")!r} / model {name!r}'
  checks = ((model.get('tasks', 'multitask'), TASK_MODES, 'tasks'),
            (model.get('distillation', 'C'), DISTILLATION_MODES, 'distillation'),
            (model.get('gate_source', 'target'), GATE_SOURCES, 'gate_source'),
            (model.get('distill_input', 'predictions'), DISTILL_INPUTS, 'distill_input'),
            (model.get('layout', 'pytorch'), LAYOUTS, 'layout'),
            (model.get('output_stride', 8), (8, 16, 32), 'output_stride'),
            (model.get('depth', 50), tuple(STAGE_BLOCKS), 'depth'),
            (model.get('bn_mode', 'train'), BN_MODES, 'bn_mode'),
            (model.get('head_bn_mode', 'train'), BN_MODES, 'head_bn_mode'),
            (config.get('optimizer', {}).get('name', 'sgd'), OPTIMIZERS, 'optimizer.name'))
  for value, allowed, field in checks:
    if value not in allowed:
      return f'the PyTorch PAD-Net reference has no {field}={value!r} (known: {allowed})'
  if model.get('dtype', 'float32') != 'float32':
    return f'the PyTorch PAD-Net reference is float32 only (model.dtype={model.get("dtype")!r})'
  if model.get('deconv_kernel', 4) % 2:
    return 'the PyTorch PAD-Net reference needs an even deconv_kernel (as jaxseg)'
  bad = [l for l in model.get('aggregate_layers', ()) if l not in FEATURE_MAPS]
  if bad:
    return f'unknown aggregate_layers {bad} (known: {FEATURE_MAPS})'
  groups = config.get('optimizer', {}).get('param_groups', ()) or ()
  groups = list(groups.values()) if hasattr(groups, 'values') else list(groups)
  if any(g.get('frozen', False) for g in groups):
    return 'the PyTorch PAD-Net reference does not mirror frozen parameter groups'
  return None


def build_padnet(num_classes: int, tasks: str = 'multitask', distillation: str = 'C',
                 gate_source: str = 'target', distill_input: str = 'predictions',
                 features: int = 512, backbone_depth: int = 50, backbone_width: int = 64,
                 layout: str = 'pytorch', deep_stem: bool = False, output_stride: int = 8,
                 pool_ceil_mode: bool = False, bn_mode: str = 'train',
                 head_bn_mode: str = 'train',
                 aggregate_layers: Sequence[str] = ('layer1', 'layer2', 'layer3'),
                 aggregate_features: int = 256, deconv_kernel: int = 4,
                 align_corners: bool = False):
  """The PAD-Net torch module (arguments as `jaxseg.methods.padnet.model.PADNet`'s fields).

  `forward(image NCHW)` returns jaxseg's output dict in NCHW / NHW: 'logits' (B, K, H, W),
  'depth' (B, H, W) and, multi-task, 'intermediate' {'depth' (B, h, w), 'normals' (B, 3, h, w),
  'parsing' (B, K, h, w), 'contours' (B, h, w)}. Every BatchNorm2d carries `jaxseg_bn_mode`.
  """
  torch = import_torch()
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  if features % 4:
    raise ValueError(f'features (N) must be divisible by 4, got {features}')
  if deconv_kernel % 2:
    raise ValueError(f'deconv_kernel must be even, got {deconv_kernel}')

  def bn(channels, mode):
    m = nn.BatchNorm2d(channels)  # eps 1e-5, momentum 0.1 = jaxseg's 0.9
    m.jaxseg_bn_mode = mode
    if mode != 'train':
      m.weight.requires_grad_(False)
      m.bias.requires_grad_(False)
    return m

  def resize(x, size):
    if tuple(x.shape[2:]) == tuple(size):
      return x
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=align_corners)

  class Bottleneck(nn.Module):

    def __init__(self, inplanes, planes, stride, dilation, downsample):
      super().__init__()
      s1, s3 = (stride, 1) if layout == 'caffe' else (1, stride)
      self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=s1, bias=False)
      self.bn1 = bn(planes, bn_mode)
      self.conv2 = nn.Conv2d(planes, planes, 3, stride=s3, padding=dilation, dilation=dilation,
                             bias=False)
      self.bn2 = bn(planes, bn_mode)
      self.conv3 = nn.Conv2d(planes, planes * EXPANSION, 1, bias=False)
      self.bn3 = bn(planes * EXPANSION, bn_mode)
      self.has_downsample = downsample
      if downsample:
        self.downsample_conv = nn.Conv2d(inplanes, planes * EXPANSION, 1, stride=stride,
                                         bias=False)
        self.downsample_bn = bn(planes * EXPANSION, bn_mode)

    def forward(self, x):
      y = F.relu(self.bn1(self.conv1(x)))
      y = F.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      if self.has_downsample:
        x = self.downsample_bn(self.downsample_conv(x))
      return F.relu(y + x)

  class ResNet(nn.Module):

    def __init__(self):
      super().__init__()
      w = backbone_width
      if deep_stem:
        self.stem = [(f'conv{i}', f'bn{i}') for i in (1, 2, 3)]
        cin = 3
        for i, (c, s) in enumerate(((w, 2), (w, 1), (2 * w, 1)), start=1):
          setattr(self, f'conv{i}', nn.Conv2d(cin, c, 3, stride=s, padding=1, bias=False))
          setattr(self, f'bn{i}', bn(c, bn_mode))
          cin = c
      else:
        self.stem = [('conv1', 'bn1')]
        self.conv1 = nn.Conv2d(3, w, 7, stride=2, padding=3, bias=False)
        self.bn1 = bn(w, bn_mode)
        cin = w
      self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=pool_ceil_mode)
      self.channels = {'stem': cin}
      strides, dilations = stage_strides_dilations(output_stride)
      self.blocks = []
      for k, n in enumerate(STAGE_BLOCKS[backbone_depth]):
        dils = block_dilations(n, dilations[k], False)
        names = []
        for i in range(n):
          name = f'layer{k + 1}_{i}'
          setattr(self, name, Bottleneck(cin, w * 2**k, strides[k] if i == 0 else 1, dils[i],
                                         i == 0))
          cin = w * 2**k * EXPANSION
          names.append(name)
        self.blocks.append(names)
        self.channels[f'layer{k + 1}'] = cin

    def forward(self, x):
      for conv, norm in self.stem:
        x = F.relu(getattr(self, norm)(getattr(self, conv)(x)))
      x = self.maxpool(x)
      out = {'stem': x}
      for k, names in enumerate(self.blocks):
        for name in names:
          x = getattr(self, name)(x)
        out[f'layer{k + 1}'] = x
      return out

  class ConvBNReLU(nn.Module):

    def __init__(self, cin, cout):
      super().__init__()
      self.conv = nn.Conv2d(cin, cout, 1, bias=False)
      self.bn = bn(cout, head_bn_mode)

    def forward(self, x):
      return F.relu(self.bn(self.conv(x)))

  class DeconvBNReLU(nn.Module):

    def __init__(self, cin, cout):
      super().__init__()
      k = deconv_kernel
      self.deconv = nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k // 2 - 1, bias=False)
      self.bn = bn(cout, head_bn_mode)

    def forward(self, x):
      return F.relu(self.bn(self.deconv(x)))

  class TaskDecoder(nn.Module):

    def __init__(self, cin, widths, cout):
      super().__init__()
      self.names = []
      for i, c in enumerate(widths, start=1):
        setattr(self, f'deconv{i}', DeconvBNReLU(cin, c))
        self.names.append(f'deconv{i}')
        cin = c
      self.pred = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x):
      for name in self.names:
        x = getattr(self, name)(x)
      return self.pred(x)

  class PADNet(nn.Module):

    def __init__(self):
      super().__init__()
      n = features
      self.channels = {'depth': n, 'parsing': n, 'normals': n // 2, 'contours': n // 2}
      self.out_channels = {'depth': 1, 'parsing': num_classes, 'normals': 3, 'contours': 1}
      self.backbone = ResNet()
      cin = self.backbone.channels['layer4']
      for layer in aggregate_layers:
        setattr(self, f'aggregate_{layer}',
                ConvBNReLU(self.backbone.channels[layer], aggregate_features))
        cin += aggregate_features
      if tasks != 'multitask':
        self.finals = FINAL_TASKS if tasks == 'depth_parsing' else (tasks,)
        for k in self.finals:
          setattr(self, f'branch_{k}', DeconvBNReLU(cin, self.channels[k]))
          setattr(self, f'decoder_{k}', TaskDecoder(self.channels[k], (n // 2, n // 4),
                                                    self.out_channels[k]))
        return
      self.finals = FINAL_TASKS
      for t in INTERMEDIATE_TASKS:
        setattr(self, f'branch_{t}', DeconvBNReLU(cin, self.channels[t]))
        setattr(self, f'inter_pred_{t}', nn.Conv2d(self.channels[t], self.out_channels[t], 1))
      if distillation != 'none' and distill_input == 'predictions':
        for t in INTERMEDIATE_TASKS:
          setattr(self, f'embed_{t}', ConvBNReLU(self.out_channels[t], self.channels[t]))
      if distillation in ('B', 'C'):
        convs = {}
        conv3 = lambda a, b: nn.Conv2d(a, b, 3, padding=1, bias=False)
        for k in FINAL_TASKS:
          c_k = self.channels[k]
          if distillation == 'C' and gate_source == 'target':
            convs[f'gate_{k}'] = conv3(c_k, c_k)
          for t in INTERMEDIATE_TASKS:
            if t == k:
              continue
            convs[f'message_{t}_to_{k}'] = conv3(self.channels[t], c_k)
            if distillation == 'C' and gate_source == 'source':
              convs[f'gate_{t}_to_{k}'] = conv3(self.channels[t], c_k)
        self.distillation = nn.ModuleDict(convs)
      dec_in = dict(self.channels)
      if distillation == 'A':
        dec_in = {k: sum(self.channels.values()) for k in FINAL_TASKS}
      for k in FINAL_TASKS:
        setattr(self, f'decoder_{k}', TaskDecoder(dec_in[k], (n // 2, n // 4),
                                                  self.out_channels[k]))

    def _front_end(self, image):
      feats = self.backbone(image)
      top = feats['layer4']
      parts = [top]
      for layer in aggregate_layers:
        parts.append(resize(getattr(self, f'aggregate_{layer}')(feats[layer]), top.shape[2:]))
      return torch.cat(parts, 1) if len(parts) > 1 else top

    def _distill(self, source):
      convs = self.distillation
      out = {}
      for k in FINAL_TASKS:
        f_k = source[k]
        gate_k = None
        if distillation == 'C' and gate_source == 'target':
          gate_k = torch.sigmoid(convs[f'gate_{k}'](f_k))
        acc = f_k
        for t in INTERMEDIATE_TASKS:
          if t == k:
            continue
          message = convs[f'message_{t}_to_{k}'](source[t])
          if distillation == 'C':
            gate = gate_k if gate_k is not None else torch.sigmoid(
                convs[f'gate_{t}_to_{k}'](source[t]))
            message = gate * message
          acc = acc + message
        out[k] = acc
      return out

    def forward(self, image):
      size = image.shape[2:]
      x = self._front_end(image)
      keys = {'depth': 'depth', 'parsing': 'logits'}
      if tasks != 'multitask':
        outputs = {keys[k]: resize(getattr(self, f'decoder_{k}')(
            getattr(self, f'branch_{k}')(x)), size) for k in self.finals}
        if 'depth' in outputs:
          outputs['depth'] = outputs['depth'][:, 0]
        return outputs
      branch = {t: getattr(self, f'branch_{t}')(x) for t in INTERMEDIATE_TASKS}
      inter = {t: getattr(self, f'inter_pred_{t}')(branch[t]) for t in INTERMEDIATE_TASKS}
      if distillation == 'none':
        distilled = branch
      else:
        source = branch
        if distill_input == 'predictions':
          source = {t: getattr(self, f'embed_{t}')(inter[t]) for t in INTERMEDIATE_TASKS}
        if distillation == 'A':
          shared = torch.cat([source[t] for t in INTERMEDIATE_TASKS], 1)
          distilled = {k: shared for k in FINAL_TASKS}
        else:
          distilled = self._distill(source)
      outputs = {keys[k]: resize(getattr(self, f'decoder_{k}')(distilled[k]), size)
                 for k in FINAL_TASKS}
      outputs['depth'] = outputs['depth'][:, 0]
      outputs['intermediate'] = {'depth': inter['depth'][:, 0], 'normals': inter['normals'],
                                 'parsing': inter['parsing'],
                                 'contours': inter['contours'][:, 0]}
      return outputs

  return PADNet()


def load_flax_variables(model, variables: Mapping[str, Any]) -> None:
  """Copies a jaxseg PADNet variables tree ({'params', 'batch_stats'}) into `model` in place.

  Conv kernels HWIO -> OIHW; transposed-conv kernels (k, k, C_in, C_out) spatially flipped ->
  (C_in, C_out, k, k); BatchNorm scale / bias / mean / var -> weight / bias / running_mean /
  running_var. Raises ValueError unless every tensor of `model` is set exactly once.
  """
  torch = import_torch()
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  nn = torch.nn
  modules = dict(model.named_modules())
  targets = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
  done = set()
  bn_names = {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean', 'var': 'running_var'}
  for coll in ('params', 'batch_stats'):
    flat = traverse_util.flatten_dict(dict(variables.get(coll, {})))
    for path, value in flat.items():
      module_name, leaf = '.'.join(path[:-1]), path[-1]
      module = modules.get(module_name)
      a = np.asarray(value, np.float32)
      if isinstance(module, nn.ConvTranspose2d) and leaf == 'kernel':
        name, a = 'weight', a[::-1, ::-1].transpose(2, 3, 0, 1)
      elif isinstance(module, nn.Conv2d) and leaf in ('kernel', 'bias'):
        name, a = ('weight', a.transpose(3, 2, 0, 1)) if leaf == 'kernel' else ('bias', a)
      elif isinstance(module, nn.BatchNorm2d) and leaf in bn_names:
        name = bn_names[leaf]
      else:
        raise ValueError(f'no torch tensor for {coll}/{"/".join(path)}')
      key = f'{module_name}.{name}'
      if tuple(targets[key].shape) != a.shape:
        raise ValueError(f'{coll}/{"/".join(path)}: shape {a.shape} vs torch {key} '
                         f'{tuple(targets[key].shape)}')
      with torch.no_grad():
        targets[key].copy_(torch.from_numpy(np.ascontiguousarray(a)))
      done.add(key)
  missing = sorted(set(targets) - done)
  if missing:
    raise ValueError(f'torch tensors not set from the Flax variables: {missing}')


# ------------------------------------------------------------------------------------------------
# Loss: jaxseg.methods.padnet.model.padnet_loss with NCHW / NHW tensors.

def _match(pred, targets, resize: str, align_corners: bool):
  """`jaxseg.losses.depth.match_resolution`: pred (B, C, h, w); targets (B, H, W) / (B, C, H, W)."""
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
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
  import torch  # pylint: disable=g-import-not-at-top
  return v * torch.rsqrt(v.square().sum(1, keepdim=True).clamp(min=eps))


def padnet_loss(outputs: Mapping[str, Any], batch: Mapping[str, Any],
                weights: Optional[Mapping[str, float]] = None, *, depth_kind: str = 'l2',
                normals_kind: str = 'l2', contour_pos_weight: Optional[float] = None,
                resize: str = 'prediction', align_corners: bool = False,
                ignore_label: int = 255):
  """(total, {term: mean}) as jaxseg's `padnet_loss`; batch 'depth' (B, H, W), 'label' (B, H, W)
  int64, 'normals' (B, 3, H, W), 'contours' (B, H, W), optional 'valid' (B, H, W) bool."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  weights = PAPER_LOSS_WEIGHTS if weights is None else weights
  valid = batch.get('valid')
  inter = outputs.get('intermediate', {})
  preds = {'depth': outputs.get('depth'), 'parsing': outputs.get('logits')}
  preds.update({f'inter_{t}': inter.get(t) for t in INTERMEDIATE_TASKS})

  def all_ok(shape):
    return torch.ones(shape, dtype=torch.bool) if valid is None else valid.bool()

  def depth(pred):
    pred, (target, v) = _match(pred[:, None], (batch['depth'], valid), resize, align_corners)
    pred = pred[:, 0]
    ok = torch.isfinite(target) & (target > 0)
    ok = ok if v is None else ok & v.bool()
    diff = pred - torch.where(ok, target, 0.0)
    per_pixel = diff.abs() if depth_kind == 'l1' else diff.square()
    return _mean(torch.where(ok, per_pixel, 0.0).sum(), ok)

  def normals(pred):
    pred, (target, v) = _match(pred, (batch['normals'], valid), resize, align_corners)
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
    pred, (target, v) = _match(pred[:, None], (batch['contours'], valid), resize, align_corners)
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
    logits, (labels, v) = _match(pred, (batch['label'], valid), resize, align_corners)
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


# ------------------------------------------------------------------------------------------------

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
    torch = import_torch()
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


def model_kwargs_from_config(model_cfg) -> Dict[str, Any]:
  """`config.model` -> `build_padnet` keyword arguments (as `jaxseg.methods.padnet.build_model`)."""
  m = model_cfg
  return dict(tasks=m.tasks, distillation=m.distillation, gate_source=m.gate_source,
              distill_input=m.distill_input, features=m.features, backbone_depth=m.depth,
              backbone_width=m.width, layout=m.layout, deep_stem=m.deep_stem,
              output_stride=m.output_stride, pool_ceil_mode=m.pool_ceil_mode, bn_mode=m.bn_mode,
              head_bn_mode=m.head_bn_mode, aggregate_layers=tuple(m.aggregate_layers),
              aggregate_features=m.aggregate_features, deconv_kernel=m.deconv_kernel,
              align_corners=m.align_corners)


def from_config(config, what: str = 'train', channels_last: bool = False,
                threads: Optional[int] = None, num_classes: Optional[int] = None,
                ignore_label: int = 255) -> TorchPADNetBench:
  """A `TorchPADNetBench` for a jaxseg PAD-Net config (see `supports`)."""
  why = supports(config)
  if why:
    raise ValueError(why)
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
    from jaxseg.data import sources  # pylint: disable=g-import-not-at-top
    num_classes = sources.make_source(config.dataset, 'train').meta['num_classes']
  return TorchPADNetBench(
      num_classes=num_classes, batch=config.batch_size, height=h, width_px=w, what=what,
      model_kwargs=model_kwargs_from_config(config.model), loss_kwargs=loss_kwargs,
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
  from jaxseg.config_files import load_config  # pylint: disable=g-import-not-at-top
  b = from_config(load_config(a.config), a.what, channels_last=a.channels_last,
                  num_classes=a.classes)
  time_and_print(b, a.warmup, a.steps)


if __name__ == '__main__':
  main()
