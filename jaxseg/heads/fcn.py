"""The FCN-style segmentation head (PSPNet's main and auxiliary heads)."""
from typing import Any, Optional

import flax.linen as nn
import jax

from jaxseg.nn import Conv2D
from jaxseg.nn.blocks import ConvBNReLU

Array = jax.Array


class FCNHead(nn.Module):
  """(N, H, W, Cin) -> (N, H, W, num_classes) logits.

  ``block`` (3x3 ConvBNReLU to ``features``), channel dropout (a whole feature map is zeroed with
  probability ``dropout``, survivors scaled by 1 / (1 - dropout): PyTorch ``Dropout2d``; only
  when ``train``, drawing from the Flax ``'dropout'`` rng), ``classifier`` (1x1 conv with bias).
  PSPNet: main head ``features=512`` on the PPM output, auxiliary head ``features=256`` on layer3.
  """
  num_classes: int
  features: int = 512
  dropout: float = 0.1
  bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    x = ConvBNReLU(self.features, 3, bn_mode=self.bn_mode, bn_axis_name=self.bn_axis_name,
                   conv_impl=self.conv_impl, dtype=self.dtype, name='block')(x, train)
    x = nn.Dropout(self.dropout, broadcast_dims=(1, 2), deterministic=not train)(x)
    return Conv2D(self.num_classes, kernel_size=1, use_bias=True, impl=self.conv_impl,
                  dtype=self.dtype, name='classifier')(x)
