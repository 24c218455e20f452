"""Conv-BN-ReLU, the block PSPNet's heads, its pyramid pooling and PAD-Net's branches share."""
from typing import Any, Optional

import flax.linen as nn
import jax

from jaxseg.nn.conv import Conv2D
from jaxseg.nn.deconv import ConvTranspose
from jaxseg.nn.norm import BatchNorm


class ConvBNReLU(nn.Module):
  """(N, H, W, Cin) -> (N, H, W, features), or (N, 2H, 2W, features) with `transpose`.

  Conv (no bias, param `conv/kernel` (k, k, Cin, features), padding `dilation * (k - 1) // 2`:
  same size) or, with `transpose`, a stride-2 transposed conv (`deconv/kernel`, exact 2x
  upsampling: kernel 4 has the geometry of PyTorch ConvTranspose2d(k=4, s=2, p=1), the Flax kernel
  being PyTorch's spatially flipped; `jaxseg.nn.deconv.ConvTranspose`), then BatchNorm (`bn`) and
  ReLU. He-normal fan-out init; convolutions through `conv_impl`.
  """
  features: int
  kernel_size: int = 3
  dilation: int = 1
  transpose: bool = False
  bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.transpose:
      x = ConvTranspose(self.features, self.kernel_size, stride=2, impl=self.conv_impl,
                        dtype=self.dtype, name='deconv')(x)
    else:
      x = Conv2D(self.features, kernel_size=self.kernel_size, dilation=self.dilation,
                 use_bias=False, impl=self.conv_impl, dtype=self.dtype, name='conv')(x)
    x = BatchNorm(self.bn_mode, axis_name=self.bn_axis_name, dtype=self.dtype, name='bn')(x, train)
    return nn.relu(x)
