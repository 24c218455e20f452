"""PAD-Net multi-modal distillation modules A, B and C (padnet.md §1.2). Features are NHWC.

Notation: F_t features of source task t, F_k of target task k; conv = 3x3 conv, no bias.
  A: F° = concat(F_1, ..., F_T), one tensor shared by every target task.
  B: F°_k = F_k + sum_{t != k} W_{t,k} conv F_t.
  C: F°_k = F_k + sum_{t != k} G_{t,k} * (W_{t,k} conv F_t), with the gate
     G_{t,k} = sigmoid(W_g^k conv F_k) for gate_source='target' (the paper [N]: one gate per target,
     computed from the receiving task's own features), or
     G_{t,k} = sigmoid(W_g^{t,k} conv F_t) for gate_source='source' (MTL-PyTorch `SABlock` [V]).
W_{t,k} maps C_t channels to C_k, so F°_k keeps F_k's shape.

Parameter names: `message_{t}_to_{k}`, `gate_{k}` (target) or `gate_{t}_to_{k}` (source), each a
`jaxseg.nn.Conv2D` with `kernel` (3, 3, C_in, C_k).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxseg.nn import Conv2D

Array = jnp.ndarray
DISTILLATION_MODES = ('none', 'A', 'B', 'C')
GATE_SOURCES = ('target', 'source')


def concat_distillation(features: Mapping[str, Array], order: Sequence[str]) -> Array:
  """Module A: (B, H, W, sum_t C_t) concatenation of `features` in `order`."""
  return jnp.concatenate([features[t] for t in order], axis=-1)


class Distillation(nn.Module):
  """Modules B ('B') and C ('C'): {task: (B, H, W, C_task)} -> {target: (B, H, W, C_target)}.

  Attributes:
    targets: tasks that receive distilled features (PAD-Net: the final tasks depth, parsing).
    mode: 'B' (message passing) or 'C' (attention-guided message passing).
    gate_source: 'target' (paper, default) or 'source' (MTL-PyTorch); only used by mode 'C'.
    kernel_size: message / gate conv size (3 in both sources).
    use_bias: conv bias (False: MTL-PyTorch's SABlock has none; the paper does not say).
  Sources are all tasks of the input dict except the target, in the dict's order.
  """
  targets: Sequence[str] = ('depth', 'parsing')
  mode: str = 'C'
  gate_source: str = 'target'
  kernel_size: int = 3
  use_bias: bool = False
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, features: Mapping[str, Array]) -> Dict[str, Array]:
    if self.mode not in ('B', 'C'):
      raise ValueError(f"Distillation mode must be 'B' or 'C', got {self.mode!r}")
    if self.gate_source not in GATE_SOURCES:
      raise ValueError(f'gate_source must be one of {GATE_SOURCES}, got {self.gate_source!r}')
    conv = lambda c, name: Conv2D(c, self.kernel_size, use_bias=self.use_bias,
                                  impl=self.conv_impl, dtype=self.dtype, name=name)
    out = {}
    for k in self.targets:
      f_k = features[k]
      c_k = f_k.shape[-1]
      gate_k = None
      if self.mode == 'C' and self.gate_source == 'target':
        gate_k = nn.sigmoid(conv(c_k, f'gate_{k}')(f_k))
      acc = f_k
      for t, f_t in features.items():
        if t == k:
          continue
        message = conv(c_k, f'message_{t}_to_{k}')(f_t)
        if self.mode == 'C':
          gate = gate_k if gate_k is not None else nn.sigmoid(conv(c_k, f'gate_{t}_to_{k}')(f_t))
          message = gate * message
        acc = acc + message
      out[k] = acc
    return out
