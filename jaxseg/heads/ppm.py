"""PSPNet's Pyramid Pooling Module (NHWC)."""
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.nn.blocks import ConvBNReLU
from jaxseg.nn import adaptive_avg_pool, resize_bilinear

Array = jax.Array


class PyramidPooling(nn.Module):
  """(N, H, W, C) -> (N, H, W, C + len(bins) * F), F = ``features`` or C // len(bins).

  Branch ``branch_{i}``: adaptive average pooling to ``bins[i]`` x ``bins[i]`` with PyTorch's
  ``AdaptiveAvgPool2d`` bin edges (bin j spans [floor(j * H / b), ceil((j + 1) * H / b)), so bins
  overlap when H is not a multiple of b), 1x1 ConvBNReLU to F channels, bilinear upsampling back
  to (H, W) (``align_corners``: semseg / Caffe True, mmseg False). Output channels are
  [x, branch_0, branch_1, ...] in ``bins`` order (semseg and mmseg order; 2048 + 4 * 512 = 4096
  for ResNet-50/101 at width 64). semseg uses F = C / len(bins); mmseg a fixed 512.
  """
  bins: Sequence[int] = (1, 2, 3, 6)
  features: int = 0
  align_corners: bool = True
  bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    if not self.bins or min(self.bins) < 1:
      raise ValueError(f'bins must be positive integers, got {tuple(self.bins)}')
    features = self.features or x.shape[-1] // len(self.bins)
    size = x.shape[1:3]
    outs = [x]
    for i, b in enumerate(self.bins):
      y = adaptive_avg_pool(x, b)
      y = ConvBNReLU(features, 1, bn_mode=self.bn_mode, bn_axis_name=self.bn_axis_name,
                     conv_impl=self.conv_impl, dtype=self.dtype, name=f'branch_{i}')(y, train)
      outs.append(resize_bilinear(y, size, self.align_corners).astype(x.dtype))
    return jnp.concatenate(outs, axis=-1)
