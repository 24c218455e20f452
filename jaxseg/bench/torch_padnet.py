"""PyTorch reference of jaxseg's PAD-Net: the network and `load_flax_variables`.

`build_padnet(num_classes, **jaxseg.methods.padnet.model.model_kwargs(config.model))` has the
architecture and arithmetic of `jaxseg.methods.padnet.model.PADNet` for the config given, with
the same module names for the heads (so that `load_flax_variables` copies a Flax variables tree
into it; tests/bench/test_torch_padnet.py checks the parameter count and the outputs against JAX):
  front-end   `jaxseg.bench.torch_resnet.TorchResNet` (the ResNet of every reference, official key
              names): 'pytorch' (stride on the 3x3) or 'caffe' (stride on the first 1x1) layout,
              7x7 or deep (3x 3x3) stem, max pool 3/2/1 with floor or ceil rounding, output
              stride 8/16/32 by dilation (full dilation in every block); every map of
              `aggregate_layers` through 1x1 conv + BN + ReLU, bilinear to the layer4 size,
              concatenated onto layer4.
  branches    per intermediate task a stride-2 transposed conv (ConvTranspose2d(k, 2, k/2 - 1),
              no bias; jaxseg's 'SAME' kernel spatially flipped) + BN + ReLU, N or N/2 channels,
              then a biased 1x1 prediction conv.
  distillation 'none' | 'A' (concatenation) | 'B' (message passing) | 'C' (gated, gate from the
              target or the source task), 3x3 convs without bias, on the re-embedded predictions
              (1x1 conv + BN + ReLU) or the branch features (`distill_input`).
  decoders    two transposed convs + BN + ReLU (N/2, N/4), a biased 1x1 prediction conv, bilinear
              to the input size when it differs. Single-task / direct multi-task variants too.
BatchNorm: 'train' = ordinary BN, 'frozen' = running statistics and no affine gradient,
'frozen_affine' = batch statistics and no affine gradient, as jaxseg.nn.BatchNorm (every
BatchNorm2d carries `jaxseg_bn_mode`). The loss is `torch_padnet_loss`, the timed step
`torch_padnet_bench`. Importing this module imports torch.
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np
from flax import traverse_util

from jaxseg.backbones.resnet import STAGE_BLOCKS, stage_strides_dilations
from jaxseg.bench.torch_resnet import F, TorchResNet, nn, torch
from jaxseg.methods.padnet.model import FINAL_TASKS, INTERMEDIATE_TASKS


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
  'parsing' (B, K, h, w), 'contours' (B, h, w)}.
  """
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

  def backbone():
    strides, dilations = stage_strides_dilations(output_stride)
    return TorchResNet(STAGE_BLOCKS[backbone_depth], backbone_width, layout, strides, dilations,
                       ceil_mode=pool_ceil_mode, deep_stem=deep_stem,
                       norm=lambda c: bn(c, bn_mode))

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
      self.backbone = backbone()
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
  running_var; backbone blocks `layer{k}_{i}` -> `layer{k}.{i}`, `downsample_conv` / `_bn` ->
  `downsample.0` / `.1` (`torch_module_name`). Raises ValueError unless every tensor of `model` is set exactly once.
  """
  modules = dict(model.named_modules())
  targets = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
  done = set()
  bn_names = {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean', 'var': 'running_var'}
  for coll in ('params', 'batch_stats'):
    flat = traverse_util.flatten_dict(dict(variables.get(coll, {})))
    for path, value in flat.items():
      module_name, leaf = torch_module_name(path[:-1]), path[-1]
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


def torch_module_name(flax_path: Sequence[str]) -> str:
  """('backbone', 'layer2_0', 'downsample_bn') -> 'backbone.layer2.0.downsample.1'."""
  name = '.'.join(flax_path)
  name = re.sub(r'(^|\.)layer(\d)_(\d+)(?=\.|$)', r'\1layer\2.\3', name)
  return name.replace('downsample_conv', 'downsample.0').replace('downsample_bn', 'downsample.1')
