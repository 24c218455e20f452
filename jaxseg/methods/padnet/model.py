"""PAD-Net (Xu et al., CVPR 2018): prediction-and-distillation network for depth + scene parsing.

Pipeline (padnet.md §1.1), all NHWC:
  front-end   ResNet (output stride 8); each shallower map in `aggregate_layers` goes through a
              1x1 conv + BN + ReLU, is resized (bilinear) to the layer4 size and concatenated onto
              layer4 ("multi-scale aggregation", 1/8 of the input).
  branches    four intermediate tasks (depth, normals, parsing, contours), each a stride-2 deconv
              + BN + ReLU to 1/4 resolution with N (depth, parsing) or N/2 (normals, contours)
              channels, then a 1x1 prediction conv (1, 3, num_classes, 1 channels).
  distillation 'none' | 'A' | 'B' | 'C' (jaxseg.heads.padnet_distillation) into the final tasks.
  decoders    per final task (depth, parsing): two stride-2 deconvs + BN + ReLU (N/2, N/4
              channels; 1/4 -> 1/1), then a 1x1 prediction conv.

Outputs of `PADNet.apply(variables, image, train=...)`:
  'logits' (B, H, W, num_classes) final parsing logits; 'depth' (B, H, W) final depth (NHW);
  'intermediate': {'depth' (B, H/4, W/4), 'normals' (B, H/4, W/4, 3) unnormalised,
  'parsing' (B, H/4, W/4, num_classes) logits, 'contours' (B, H/4, W/4) logits}.
Final outputs are resized (bilinear) to the input size when the 8x-upsampled front-end size differs
from it (inputs not divisible by 8, or Caffe ceil-mode pooling). Single-task variants return only
their own final output.

The loss is in `jaxseg.methods.padnet.loss`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import flax.linen as nn
import jax
import numpy as np
import jax.numpy as jnp

from jaxseg.backbones.resnet import ResNet
from jaxseg.heads.padnet_distillation import (DISTILLATION_MODES, GATE_SOURCES, Distillation,
                                              concat_distillation)
from jaxseg.nn import Conv2D, resize_bilinear
from jaxseg.nn.blocks import ConvBNReLU
from jaxseg.nn.precision import compute_dtype

Array = jnp.ndarray
INTERMEDIATE_TASKS = ('depth', 'normals', 'parsing', 'contours')  # "low level to high level"
FINAL_TASKS = ('depth', 'parsing')
TASK_MODES = ('multitask', 'depth', 'parsing', 'depth_parsing')
DISTILL_INPUTS = ('predictions', 'features')


class TaskDecoder(nn.Module):
  """Deconv + BN + ReLU per entry of `features` (each doubles H, W), then a 1x1 prediction conv."""
  features: Sequence[int]
  out_channels: int
  kernel_size: int = 4
  bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    for i, f in enumerate(self.features, start=1):
      x = ConvBNReLU(f, self.kernel_size, transpose=True, bn_mode=self.bn_mode,
                     bn_axis_name=self.bn_axis_name, conv_impl=self.conv_impl, dtype=self.dtype,
                     name=f'deconv{i}')(x, train)
    return Conv2D(self.out_channels, 1, use_bias=True, impl=self.conv_impl, dtype=self.dtype,
                  name='pred')(x)


class PADNet(nn.Module):
  """PAD-Net, paper-faithful by default; the survey (MTL-PyTorch) choices are flags.

  Attributes:
    num_classes: parsing classes.
    tasks: 'multitask' (full PAD-Net), 'depth' or 'parsing' (single-task baselines: front-end,
      that task's branch, its decoder; no intermediate tasks, no distillation) or 'depth_parsing'
      (the "direct multi-task" ablation: both baselines on one front-end). `distillation`,
      `gate_source` and `distill_input` only apply to 'multitask'.
    distillation: 'none' (each final decoder reads its own branch's features; intermediate
      predictions are still made, for deep supervision), 'A', 'B' or 'C'.
    gate_source: module C gate from the receiving task 'target' (paper [N], default) or from the
      sending task 'source' (MTL-PyTorch SABlock [V]).
    distill_input: 'predictions' (paper [N], default, unverified: each intermediate prediction is
      lifted back to C_t channels with a 1x1 conv + BN + ReLU, and those maps are F_t) or
      'features' (MTL-PyTorch [V]: the branch features themselves).
    features: N, channels of the main-task branches (paper 512 [N]); auxiliary branches get N/2,
      decoders N/2 then N/4.
    backbone_depth, backbone_width, layout, deep_stem, output_stride, pool_ceil_mode, bn_mode,
      bn_axis_name, conv_impl: forwarded to `jaxseg.backbones.resnet.ResNet` (paper: ResNet-50
      for NYUD-v2, ResNet-101 for Cityscapes [N]; front-end at 1/8 [N]). The layout and pooling
      defaults (torchvision 'pytorch' layout, floor pooling, so 8k inputs give exact 1/8 maps)
      are a jaxseg choice; the paper used Caffe [R].
    head_bn_mode: BatchNorm mode of every layer outside the backbone.
    aggregate_layers, aggregate_features: shallower backbone maps aggregated onto layer4 and the
      channels of each after its 1x1 conv. Recommendation (the sources give neither the layers nor
      the channel counts): ('layer1', 'layer2', 'layer3') and 256.
    deconv_kernel: transposed-conv kernel size (4; not given by the sources).
    align_corners: bilinear convention of the internal resizes.
  """
  num_classes: int
  tasks: str = 'multitask'
  distillation: str = 'C'
  gate_source: str = 'target'
  distill_input: str = 'predictions'
  features: int = 512
  backbone_depth: int = 50
  backbone_width: int = 64
  layout: str = 'pytorch'
  deep_stem: bool = False
  output_stride: int = 8
  pool_ceil_mode: bool = False
  bn_mode: str = 'train'
  head_bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  aggregate_layers: Sequence[str] = ('layer1', 'layer2', 'layer3')
  aggregate_features: int = 256
  deconv_kernel: int = 4
  align_corners: bool = False
  conv_impl: str = 'xla'
  dtype: Any = None

  def _check(self):
    for value, allowed, name in ((self.tasks, TASK_MODES, 'tasks'),
                                 (self.distillation, DISTILLATION_MODES, 'distillation'),
                                 (self.gate_source, GATE_SOURCES, 'gate_source'),
                                 (self.distill_input, DISTILL_INPUTS, 'distill_input')):
      if value not in allowed:
        raise ValueError(f'PADNet.{name} must be one of {allowed}, got {value!r}')
    if self.features % 4:
      raise ValueError(f'PADNet.features (N) must be divisible by 4, got {self.features}')

  def _front_end(self, image: Array, train: bool) -> Array:
    feats = ResNet(self.backbone_depth, self.backbone_width, self.layout, self.deep_stem,
                   output_stride=self.output_stride, pool_ceil_mode=self.pool_ceil_mode, bn_mode=self.bn_mode,
                   bn_axis_name=self.bn_axis_name, conv_impl=self.conv_impl, dtype=self.dtype,
                   name='backbone')(image, train)
    top = feats['layer4']
    parts = [top]
    for layer in self.aggregate_layers:
      y = self._conv_bn_relu(self.aggregate_features, f'aggregate_{layer}')(feats[layer], train)
      if y.shape[1:3] != top.shape[1:3]:
        y = resize_bilinear(y, top.shape[1:3], align_corners=self.align_corners)
      parts.append(y)
    return jnp.concatenate(parts, axis=-1)

  def _conv_bn_relu(self, features: int, name: str, transpose: bool = False) -> ConvBNReLU:
    return ConvBNReLU(features, self.deconv_kernel if transpose else 1, transpose=transpose,
                      bn_mode=self.head_bn_mode, bn_axis_name=self.bn_axis_name,
                      conv_impl=self.conv_impl, dtype=self.dtype, name=name)

  def _deconv(self, features: int, name: str) -> ConvBNReLU:
    return self._conv_bn_relu(features, name, transpose=True)

  def _decode(self, task: str, x: Array, out_channels: int, size: Tuple[int, int],
              train: bool) -> Array:
    n = self.features
    y = TaskDecoder((n // 2, n // 4), out_channels, self.deconv_kernel, self.head_bn_mode,
                    self.bn_axis_name, self.conv_impl, self.dtype, name=f'decoder_{task}')(x, train)
    if y.shape[1:3] != tuple(size):
      y = resize_bilinear(y, size, align_corners=self.align_corners)
    return y

  @nn.compact
  def __call__(self, image: Array, train: bool) -> Dict[str, Any]:
    """image (B, H, W, 3) -> output dict (see module docstring)."""
    self._check()
    size = image.shape[1:3]
    n = self.features
    channels = {'depth': n, 'parsing': n, 'normals': n // 2, 'contours': n // 2}
    out_channels = {'depth': 1, 'parsing': self.num_classes, 'normals': 3, 'contours': 1}
    out_keys = {'depth': 'depth', 'parsing': 'logits'}
    x = self._front_end(image, train)

    if self.tasks != 'multitask':
      finals = FINAL_TASKS if self.tasks == 'depth_parsing' else (self.tasks,)
      outputs = {}
      for k in finals:
        f = self._deconv(channels[k], f'branch_{k}')(x, train)
        outputs[out_keys[k]] = self._decode(k, f, out_channels[k], size, train)
      if 'depth' in outputs:
        outputs['depth'] = outputs['depth'][..., 0]
      return outputs

    branch = {t: self._deconv(channels[t], f'branch_{t}')(x, train) for t in INTERMEDIATE_TASKS}
    inter = {t: Conv2D(out_channels[t], 1, use_bias=True, impl=self.conv_impl, dtype=self.dtype,
                       name=f'inter_pred_{t}')(branch[t]) for t in INTERMEDIATE_TASKS}
    if self.distillation == 'none':
      source = distilled = branch
    elif self.distill_input == 'predictions':
      source = {t: self._conv_bn_relu(channels[t], f'embed_{t}')(inter[t], train)
                for t in INTERMEDIATE_TASKS}
    else:
      source = branch

    if self.distillation == 'A':
      shared = concat_distillation(source, INTERMEDIATE_TASKS)
      distilled = {k: shared for k in FINAL_TASKS}
    elif self.distillation in ('B', 'C'):
      distilled = Distillation(FINAL_TASKS, self.distillation, self.gate_source,
                               conv_impl=self.conv_impl, dtype=self.dtype,
                               name='distillation')(source)

    outputs = {out_keys[k]: self._decode(k, distilled[k], out_channels[k], size, train)
               for k in FINAL_TASKS}
    outputs['depth'] = outputs['depth'][..., 0]
    outputs['intermediate'] = {'depth': inter['depth'][..., 0], 'normals': inter['normals'],
                               'parsing': inter['parsing'], 'contours': inter['contours'][..., 0]}
    return outputs


def model_kwargs(model_cfg) -> Dict[str, Any]:
  """`config.model` -> the PADNet fields that describe the network (`depth`/`width` are the
  ResNet's, as in every jaxseg config); the PyTorch reference takes the same keywords."""
  m = model_cfg
  return dict(tasks=m.tasks, distillation=m.distillation, gate_source=m.gate_source,
              distill_input=m.distill_input, features=m.features, backbone_depth=m.depth,
              backbone_width=m.width, layout=m.layout, deep_stem=m.deep_stem,
              output_stride=m.output_stride, pool_ceil_mode=m.pool_ceil_mode, bn_mode=m.bn_mode,
              head_bn_mode=m.head_bn_mode, aggregate_layers=tuple(m.aggregate_layers),
              aggregate_features=m.aggregate_features, deconv_kernel=m.deconv_kernel,
              align_corners=m.align_corners)


def build_model(model_cfg, num_classes: int, axis_name=None) -> PADNet:
  """`config.model` -> PADNet (`model_kwargs`, plus how it computes: axis, conv, dtype)."""
  return PADNet(num_classes=num_classes, bn_axis_name=axis_name,
                conv_impl=model_cfg.get('conv_impl', 'xla'), dtype=compute_dtype(model_cfg),
                **model_kwargs(model_cfg))


# Flax variance_scaling('normal') draws a [-2, 2] truncated normal divided by its std.
_TRUNC_STD = 0.87962566103423978
_CONSTANTS = {'bias': 0.0, 'scale': 1.0, 'mean': 0.0, 'var': 1.0}


def fast_init(module, rng, image):
  """`module.init(rng, image, train=False)`'s variables, drawn in one random op.

  Every PADNet parameter is a conv / deconv `kernel` (kh, kw, C_in, C_out) with He-normal
  fan-out init (`jaxseg.nn.he_normal_fan_out`: truncated normal, std sqrt(2 / (kh kw C_out))),
  a zero `bias`, or BatchNorm `scale` 1 / `bias` 0 / `mean` 0 / `var` 1. Drawing all kernels as
  slices of one truncated-normal vector gives the same distribution as the per-layer
  initializers, but compiles in seconds instead of minutes on CPU (threefry is unrolled once per
  parameter). Trees with any other leaf fall back to `module.init`.
  """
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), image, train=False))
  leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  names = [str(getattr(path[-1], 'key', '')) for path, _ in leaves]
  if any(n not in _CONSTANTS and not (n == 'kernel' and s.ndim >= 2)
         for n, (_, s) in zip(names, leaves)):
    return module.init(rng, image, train=False)
  sizes = [int(np.prod(s.shape)) if n == 'kernel' else 0 for n, (_, s) in zip(names, leaves)]
  draw = jax.random.truncated_normal(rng, -2.0, 2.0, (max(sum(sizes), 1),), jnp.float32)
  chunks = jnp.split(draw, np.cumsum(sizes)[:-1])
  out = []
  for name, (_, s), chunk in zip(names, leaves, chunks):
    if name == 'kernel':
      fan_out = int(np.prod(s.shape[:-2])) * s.shape[-1]
      std = np.sqrt(2.0 / fan_out) / _TRUNC_STD
      out.append((chunk * std).reshape(s.shape).astype(s.dtype))
    else:
      out.append(jnp.full(s.shape, _CONSTANTS[name], s.dtype))
  return jax.tree_util.tree_unflatten(treedef, out)


def evaluated_tasks(tasks: str) -> tuple:
  """Tasks whose metrics a model variant produces."""
  return {'multitask': ('parsing', 'depth', 'normals', 'contours'), 'depth': ('depth',),
          'parsing': ('parsing',), 'depth_parsing': ('parsing', 'depth')}[tasks]
