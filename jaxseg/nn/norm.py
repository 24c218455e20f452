"""Batch normalisation (channels last) in the three regimes used by the segmentation methods."""
from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

BN_MODES = ('frozen', 'frozen_affine', 'train')


def batch_moments(x: jax.Array,
                  axis_name: Optional[str] = None) -> Tuple[jax.Array, jax.Array, int]:
  """Per-channel float32 mean and biased variance of x (..., C) over all leading axes.

  With `axis_name`, the mean and mean of squares are `pmean`ed over that axis, which gives the
  statistics of the whole batch when every shard has the same shape. Returns (mean, var, count),
  count being the number of values per channel over all shards (a Python int).
  """
  x32 = x.astype(jnp.float32)
  reduce_axes = tuple(range(x.ndim - 1))
  mean = jnp.mean(x32, axis=reduce_axes)
  mean_sq = jnp.mean(jnp.square(x32), axis=reduce_axes)
  count = x.size // x.shape[-1]
  if axis_name is not None:
    mean, mean_sq = lax.pmean((mean, mean_sq), axis_name)
    count *= lax.axis_size(axis_name)
  var = jnp.maximum(mean_sq - jnp.square(mean), 0.0)
  return mean, var, count


class BatchNorm(nn.Module):
  """BatchNorm over N, H, W of an NHWC input, called `bn(x, train)`.

  Params `scale`, `bias` (C,); batch_stats `mean`, `var` (C,), float32.
  Modes:
    'frozen':        running statistics always, no statistics update, scale/bias get no gradient.
    'frozen_affine': batch statistics when `train` (running statistics updated), scale/bias get
                     no gradient; running statistics otherwise.
    'train':         ordinary BN: batch statistics (synced over `axis_name`) when `train`.
  Running stats: `ra = momentum * ra + (1 - momentum) * batch` (momentum 0.9 = PyTorch 0.1), with
  the unbiased batch variance; normalisation uses the biased one. Statistics are float32; the output
  has `dtype`, or the input dtype when `dtype` is None. Updating needs `mutable=['batch_stats']`.
  """
  mode: str
  momentum: float = 0.9
  epsilon: float = 1e-5
  axis_name: Optional[str] = None
  dtype: Optional[Any] = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.mode not in BN_MODES:
      raise ValueError(f'unknown BatchNorm mode {self.mode!r}; expected one of {BN_MODES}')
    features = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (features,), self.param_dtype)
    bias = self.param('bias', nn.initializers.zeros, (features,), self.param_dtype)
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros, (features,), jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, (features,), jnp.float32)
    if self.mode != 'train':
      scale, bias = lax.stop_gradient(scale), lax.stop_gradient(bias)

    if train and self.mode != 'frozen':
      mean, var, count = batch_moments(x, self.axis_name)
      if not self.is_initializing():
        unbiased_var = var * (count / max(count - 1, 1))
        m = self.momentum
        running_mean.value = m * running_mean.value + (1 - m) * lax.stop_gradient(mean)
        running_var.value = m * running_var.value + (1 - m) * lax.stop_gradient(unbiased_var)
    else:
      mean, var = running_mean.value, running_var.value

    multiplier = scale.astype(jnp.float32) * lax.rsqrt(var + self.epsilon)
    offset = bias.astype(jnp.float32) - mean * multiplier
    y = x.astype(jnp.float32) * multiplier + offset
    return y.astype(self.dtype or x.dtype)
