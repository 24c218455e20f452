"""Depth super-resolution losses (ctkt_dsr.md §6): masked L1 / L2 as (sum, count)."""
import jax.numpy as jnp

from jaxseg.methods.ctkt.checks import LOSS_KINDS


def dsr_loss_sum(pred, target, valid=None, kind: str = 'l1'):
  """Masked per-pixel error of a depth map: (sum over valid pixels, number of valid pixels).

  Args:
    pred: (B, H, W) or (B, H, W, 1) prediction.
    target: (B, H, W) HR target; non-finite values are invalid (zero is a valid value: min-max
      normalised depth has its minimum at 0).
    valid: optional (B, H, W) bool; False pixels contribute nothing (exactly zero gradient).
    kind: 'l1' (absolute error, ctkt_dsr.md §6) or 'l2' (squared error).
  Returns:
    (sum, count) float32 scalars; divide with `jaxseg.losses.reduce.global_mean`.
  """
  if kind not in LOSS_KINDS:
    raise ValueError(f'kind must be one of {LOSS_KINDS}, got {kind!r}')
  if pred.ndim == 4:
    pred = pred[..., 0]
  target = target.astype(jnp.float32)
  ok = jnp.isfinite(target)
  if valid is not None:
    ok &= valid.astype(bool)
  err = pred.astype(jnp.float32) - jnp.where(ok, target, 0.0)
  per = jnp.abs(err) if kind == 'l1' else jnp.square(err)
  return jnp.sum(jnp.where(ok, per, 0.0)), jnp.sum(ok, dtype=jnp.float32)
