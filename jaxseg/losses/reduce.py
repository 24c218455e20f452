"""Device-count-independent reduction of `(sum, count)` losses.

Losses that average over pixels return a pair `(total, count)`. `global_mean` divides the local
total by the count summed over all devices, so that:

- under `jax.jit` over a mesh (or on one device), `axis_name=None` and the division is the plain
  global mean, because `total` and `count` already cover the whole batch;
- under `jax.pmap` / `jax.shard_map` with `axis_name`, each device returns
  `local_total / global_count`. Its gradient is that device's share of the global gradient, so the
  gradients must be combined with `lax.psum` (not `pmean`), and `lax.psum` of the per-device loss
  values is the global mean.

Both paths then give the same value and gradient as one device on the whole batch, also when
the number of valid pixels differs between devices (a mean of per-device means would not).
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def global_mean(total, count, axis_name=None):
  """`total / max(sum of count over axis_name, 1)`.

  Args:
    total: scalar (or any shape) local sum; gradients flow through it.
    count: local count, same shape as `total` or scalar; treated as a constant
      (`stop_gradient`) and `psum`-ed over `axis_name` when given.
    axis_name: mapped axis name (pmap / shard_map / vmap) or None.
  Returns:
    The mean; 0 where the global count is 0 (and `total` is 0).
  """
  count = lax.stop_gradient(jnp.asarray(count, jnp.float32))
  if axis_name is not None:
    count = lax.psum(count, axis_name)
  return total / jnp.maximum(count, 1.0)
