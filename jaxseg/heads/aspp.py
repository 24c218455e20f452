"""DeepLab v2 ASPP classifier: parallel dilated 3x3 convs straight to classes, summed (NHWC)."""
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax

from jaxseg.nn import Conv2D

Array = jax.Array


class ASPP(nn.Module):
  """(N, H, W, C) -> (N, H, W, num_classes) logits.

  Branch ``branch_{i}`` is a 3x3 conv with dilation = padding = ``rates[i]``, bias, kernel
  N(0, 0.01), bias 0. The branch outputs are summed (no BN / ReLU / concat / image pooling).
  ``num_branches`` (default: all) sums only the first n branches; the other branches still own
  parameters (created at init, never computed in apply), reproducing the AdaptSegNet release where
  only rates 6 and 12 contribute but all four convs exist in the checkpoint.
  """
  num_classes: int
  rates: Sequence[int] = (6, 12, 18, 24)
  num_branches: Optional[int] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array) -> Array:
    n = len(self.rates) if self.num_branches is None else self.num_branches
    if not 1 <= n <= len(self.rates):
      raise ValueError(f'num_branches must be in [1, {len(self.rates)}], got {n}')
    branches = [
        Conv2D(self.num_classes, kernel_size=3, dilation=r, padding=r, use_bias=True,
               kernel_init=nn.initializers.normal(stddev=0.01),
               bias_init=nn.initializers.zeros, impl=self.conv_impl, dtype=self.dtype,
               name=f'branch_{i}')
        for i, r in enumerate(self.rates)
    ]
    out = branches[0](x)
    for b in branches[1:n]:
      out = out + b(x)
    if self.is_initializing():
      for b in branches[n:]:  # create the parameters of unused branches only
        b(x)
    return out
