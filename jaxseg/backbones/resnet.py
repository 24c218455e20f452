"""Bottleneck ResNet backbones for dense prediction (NHWC).

Two block layouts:
  * ``'caffe'``   (MSRA / DeepLab v2): the stride sits on the first 1x1 conv (``conv1``).
  * ``'pytorch'`` (torchvision v1.5 / PSPNet): the stride sits on the 3x3 conv (``conv2``).

Output stride 8 / 16 / 32 is obtained by replacing the strides of layer3/layer4 with dilation.
Submodule names follow the PyTorch references so that weight conversion maps 1:1.
"""
from typing import Any, Dict, Optional, Tuple

import flax.linen as nn
import jax

from jaxseg.nn import BatchNorm, Conv2D, max_pool

Array = jax.Array

STAGE_BLOCKS = {
    14: (1, 1, 1, 1),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
EXPANSION = 4
LAYOUTS = ('caffe', 'pytorch')


def stage_strides_dilations(output_stride: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
  """Per-stage (strides, dilations) for layer1..layer4 given the output stride."""
  table = {
      8: ((1, 2, 1, 1), (1, 1, 2, 4)),
      16: ((1, 2, 2, 1), (1, 1, 1, 2)),
      32: ((1, 2, 2, 2), (1, 1, 1, 1)),
  }
  if output_stride not in table:
    raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
  return table[output_stride]


def block_dilations(num_blocks: int, dilation: int, contract_dilation: bool) -> Tuple[int, ...]:
  """Dilation of the 3x3 conv of each block of a stage.

  ``contract_dilation=True`` (mmseg / PSPNet convention) halves the dilation of the first block of
  a dilated stage; ``False`` (DeepLab v2) uses the full dilation in every block.
  """
  first = dilation // 2 if (contract_dilation and dilation > 1) else dilation
  return (first,) + (dilation,) * (num_blocks - 1)


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (dilated) -> 1x1 bottleneck with optional projection shortcut.

  (N, H, W, Cin) -> (N, ceil(H / strides), ceil(W / strides), features * 4).
  """
  features: int
  strides: int = 1
  dilation: int = 1
  layout: str = 'caffe'
  downsample: bool = False
  bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    conv = lambda f, k, s, d, name: Conv2D(
        f, kernel_size=k, strides=s, dilation=d, use_bias=False, impl=self.conv_impl,
        dtype=self.dtype, name=name)
    bn = lambda name: BatchNorm(self.bn_mode, axis_name=self.bn_axis_name, dtype=self.dtype,
                                name=name)
    s1, s3 = (self.strides, 1) if self.layout == 'caffe' else (1, self.strides)

    y = nn.relu(bn('bn1')(conv(self.features, 1, s1, 1, 'conv1')(x), train))
    y = nn.relu(bn('bn2')(conv(self.features, 3, s3, self.dilation, 'conv2')(y), train))
    y = bn('bn3')(conv(self.features * EXPANSION, 1, 1, 1, 'conv3')(y), train)
    if self.downsample:
      x = conv(self.features * EXPANSION, 1, self.strides, 1, 'downsample_conv')(x)
      x = bn('downsample_bn')(x, train)
    return nn.relu(y + x)


class ResNet(nn.Module):
  """Dilated bottleneck ResNet: (N, H, W, 3) -> dict of NHWC features.

  Returns ``stem`` (after max pool, stride 4), ``layer1`` (stride 4, 4*width ch), ``layer2``
  (stride 8, 8*width), ``layer3`` (stride 8/16/16, 16*width), ``layer4`` (stride
  output_stride, 32*width). With ``pool_ceil_mode`` strides round up (Caffe): 321 -> 81 -> 41.

  ``deep_stem`` replaces the 7x7 conv by three 3x3 convs (stride 2, 1, 1) of ``stem_width``,
  ``stem_width``, ``2 * stem_width`` channels, each + BN + ReLU (``conv1..3`` / ``bn1..3``);
  ``stem_width`` defaults to ``width`` (PSPNet / semseg: 64-64-128); mmseg ResNetV1c uses
  ``stem_width = width // 2`` (32-32-64).
  """
  depth: int = 101
  width: int = 64
  layout: str = 'caffe'
  deep_stem: bool = False
  stem_width: Optional[int] = None
  output_stride: int = 8
  contract_dilation: bool = False
  pool_ceil_mode: bool = True
  bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Dict[str, Array]:
    if self.depth not in STAGE_BLOCKS:
      raise ValueError(f'depth must be one of {sorted(STAGE_BLOCKS)}, got {self.depth}')
    if self.layout not in LAYOUTS:
      raise ValueError(f'layout must be one of {LAYOUTS}, got {self.layout!r}')
    strides, dilations = stage_strides_dilations(self.output_stride)
    common = dict(bn_mode=self.bn_mode, bn_axis_name=self.bn_axis_name,
                  conv_impl=self.conv_impl, dtype=self.dtype)
    conv = lambda f, k, s, name: Conv2D(f, kernel_size=k, strides=s, use_bias=False,
                                        impl=self.conv_impl, dtype=self.dtype, name=name)
    bn = lambda name: BatchNorm(self.bn_mode, axis_name=self.bn_axis_name, dtype=self.dtype,
                                name=name)

    if self.deep_stem:
      sw = self.stem_width or self.width
      stem = ((sw, 2), (sw, 1), (2 * sw, 1))
      for i, (f, s) in enumerate(stem, start=1):
        x = nn.relu(bn(f'bn{i}')(conv(f, 3, s, f'conv{i}')(x), train))
    else:
      x = nn.relu(bn('bn1')(conv(self.width, 7, 2, 'conv1')(x), train))
    x = max_pool(x, 3, 2, 1, ceil_mode=self.pool_ceil_mode)
    out = {'stem': x}

    for k, num_blocks in enumerate(STAGE_BLOCKS[self.depth]):
      dils = block_dilations(num_blocks, dilations[k], self.contract_dilation)
      for i in range(num_blocks):
        x = Bottleneck(self.width * 2**k, strides=strides[k] if i == 0 else 1, dilation=dils[i],
                       layout=self.layout, downsample=(i == 0), name=f'layer{k + 1}_{i}',
                       **common)(x, train)
      out[f'layer{k + 1}'] = x
    return out
