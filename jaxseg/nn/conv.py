"""Dilated 2-D convolution on NHWC inputs with HWIO kernels."""
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxseg.nn.conv_vjp import conv2d_matmul_wgrad

IntOrPair = Union[int, Sequence[int]]
Padding = Union[None, int, Sequence[int], Sequence[Sequence[int]]]
PadPairs = Tuple[Tuple[int, int], Tuple[int, int]]

DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')
CONV_IMPLS = ('xla', 'matmul')


def as_pair(value: IntOrPair, name: str = 'value') -> Tuple[int, int]:
  """`3 -> (3, 3)`; `(3, 5) -> (3, 5)`."""
  if isinstance(value, int):
    return (value, value)
  pair = tuple(int(v) for v in value)
  if len(pair) != 2:
    raise ValueError(f'{name} must be an int or a pair of ints, got {value!r}')
  return pair


def conv_padding(kernel_hw: Tuple[int, int], dilation: IntOrPair,
                 padding: Padding) -> PadPairs:
  """Explicit ((top, bottom), (left, right)) padding.

  None: `dilation * (k - 1) // 2` on each side ('same' for odd k and stride 1, PyTorch
  `padding=dilation` for 3x3). int p: p on every side. (ph, pw): symmetric per axis.
  ((top, bottom), (left, right)): taken as is.
  """
  if padding is None:
    dh, dw = as_pair(dilation, 'dilation')
    kh, kw = kernel_hw
    ph, pw = dh * (kh - 1) // 2, dw * (kw - 1) // 2
    return ((ph, ph), (pw, pw))
  if isinstance(padding, int):
    return ((padding, padding), (padding, padding))
  padding = tuple(padding)
  if len(padding) == 2 and all(isinstance(p, int) for p in padding):
    return ((padding[0], padding[0]), (padding[1], padding[1]))
  if len(padding) == 2 and all(len(p) == 2 for p in padding):
    (top, bottom), (left, right) = padding
    return ((int(top), int(bottom)), (int(left), int(right)))
  raise ValueError(f'padding must be None, an int, (ph, pw) or ((top, bottom), (left, right)); '
                   f'got {padding!r}')


def conv2d(x: jax.Array, kernel: jax.Array, strides: IntOrPair = 1, dilation: IntOrPair = 1,
           padding: Padding = None, feature_group_count: int = 1, impl: str = 'xla',
           precision: Any = None) -> jax.Array:
  """2-D convolution. x: (N, H, W, Cin); kernel: (kh, kw, Cin // groups, Cout) -> (N, Ho, Wo, Cout).

  `dilation` is the kernel (atrous) dilation. `impl='xla'` calls `lax.conv_general_dilated`;
  `impl='matmul'` calls `jaxseg.nn.conv_vjp.conv2d_matmul_wgrad`, the same forward with the
  weight gradient computed as matrix products (`precision` applies to 'xla' only).
  """
  strides = as_pair(strides, 'strides')
  dilation = as_pair(dilation, 'dilation')
  pads = conv_padding(kernel.shape[:2], dilation, padding)
  if impl == 'xla':
    return lax.conv_general_dilated(
        x, kernel, window_strides=strides, padding=pads, rhs_dilation=dilation,
        dimension_numbers=DIMENSION_NUMBERS, feature_group_count=feature_group_count,
        precision=precision)
  if impl == 'matmul':
    return conv2d_matmul_wgrad(x, kernel, strides, pads, dilation, feature_group_count)
  raise ValueError(f'unknown conv impl {impl!r}; expected one of {CONV_IMPLS}')


def he_normal_fan_out() -> Callable[..., jax.Array]:
  """He normal, fan_out (PyTorch `kaiming_normal_(mode="fan_out")`): std sqrt(2 / (kh*kw*Cout))."""
  return nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


class Conv2D(nn.Module):
  """Conv layer on NHWC inputs.

  Params: `kernel` (kh, kw, Cin // groups, features), `bias` (features,).

  `dtype` is the compute dtype (inputs and kernel are cast to it); None promotes the input and
  parameter dtypes as Flax does. Parameters are stored in `param_dtype`.
  """
  features: int
  kernel_size: IntOrPair = 3
  strides: IntOrPair = 1
  dilation: IntOrPair = 1
  padding: Padding = None
  use_bias: bool = False
  kernel_init: Callable[..., jax.Array] = he_normal_fan_out()
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros
  impl: str = 'xla'
  dtype: Optional[Any] = None
  param_dtype: Any = jnp.float32
  feature_group_count: int = 1
  precision: Any = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kh, kw = as_pair(self.kernel_size, 'kernel_size')
    in_features = x.shape[-1]
    if in_features % self.feature_group_count:
      raise ValueError(f'input channels {in_features} not divisible by '
                       f'feature_group_count {self.feature_group_count}')
    kernel = self.param('kernel', self.kernel_init,
                        (kh, kw, in_features // self.feature_group_count, self.features),
                        self.param_dtype)
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = conv2d(x, kernel, strides=self.strides, dilation=self.dilation, padding=self.padding,
               feature_group_count=self.feature_group_count, impl=self.impl,
               precision=self.precision)
    if bias is not None:
      y = y + bias
    return y
