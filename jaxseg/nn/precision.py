"""Compute dtypes by config name (`config.model.dtype`): float32, or bfloat16 mixed precision."""
import jax.numpy as jnp

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(model_cfg):
  """`config.model` -> the activations' dtype (parameters and BN statistics stay float32)."""
  name = model_cfg.get('dtype', 'float32')
  if name not in DTYPES:
    raise ValueError(f'config.model.dtype={name!r} must be one of {sorted(DTYPES)}')
  return DTYPES[name]
