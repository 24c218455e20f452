"""CTKT losses (ctkt_dsr.md §6) as (sum, count) pairs: masked L1 / L2 (L_DSR), L1 + SSIM (L_DE),
class-balanced BCE (L_S). Divide with `jaxseg.losses.reduce.global_mean`."""
import dm_pix as pix
import jax
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


def window_valid(valid, filter_size: int):
  """(B, H, W) bool -> (B, H - f + 1, W - f + 1) bool: every pixel of the f x f window valid
  (the support of a 'VALID' SSIM map)."""
  v = valid.astype(jnp.float32)[..., None]
  ones = jnp.ones((filter_size, filter_size, 1, 1), jnp.float32)
  s = jax.lax.conv_general_dilated(v, ones, (1, 1), 'VALID',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return s[..., 0] >= filter_size * filter_size - 0.5


def ssim_map(pred, target, max_val: float = 1.0, filter_size: int = 11,
             filter_sigma: float = 1.5):
  """(B, H, W) maps -> (B, H - f + 1, W - f + 1) SSIM map (dm-pix: Gaussian window, 'VALID')."""
  return pix.ssim(pred[..., None].astype(jnp.float32), target[..., None].astype(jnp.float32),
                  max_val=max_val, filter_size=filter_size, filter_sigma=filter_sigma,
                  return_map=True)[..., 0]


def denet_loss_sums(pred, target, valid, alpha: float = 0.85, max_val: float = 1.0,
                    filter_size: int = 11, filter_sigma: float = 1.5):
  """L_DE = alpha * mean (1 - SSIM) / 2 + (1 - alpha) * mean |pred - target| (masked).

  ctkt_dsr.md §3/§6 [D] (the Monodepth weighting). The SSIM term is averaged over the windows
  whose pixels are all valid (invalid targets hold a placeholder value), the L1 term over valid
  pixels. pred (B, H, W[, 1]); target (B, H, W); valid (B, H, W) bool.
  Returns ((ssim_sum, ssim_count), (l1_sum, l1_count)) for `global_mean`.
  """
  if pred.ndim == 4:
    pred = pred[..., 0]
  ok = valid.astype(bool) & jnp.isfinite(target)
  target = jnp.where(ok, target.astype(jnp.float32), 0.0)
  win = window_valid(ok, filter_size)
  s = ssim_map(pred, target, max_val, filter_size, filter_sigma)
  dssim = jnp.where(win, (1.0 - s) / 2.0, 0.0)
  l1 = jnp.where(ok, jnp.abs(pred.astype(jnp.float32) - target), 0.0)
  del alpha  # the caller weights the two means (they have different supports)
  return ((jnp.sum(dssim), jnp.sum(win, dtype=jnp.float32)),
          (jnp.sum(l1), jnp.sum(ok, dtype=jnp.float32)))


def balanced_bce_sums(logits, labels, valid, axis_name=None):
  """Class-balanced BCE (HED): -beta y log s - (1 - beta)(1 - y) log(1 - s), s = sigmoid(logit),
  beta = |negatives| / |valid pixels| of the GLOBAL batch (psum over `axis_name`).

  logits (B, H, W[, 1]); labels (B, H, W) in {0, 1}; valid (B, H, W) bool.
  Returns (local sum, local valid count) for `global_mean`.
  """
  if logits.ndim == 4:
    logits = logits[..., 0]
  ok = valid.astype(bool)
  y = jnp.where(ok, labels.astype(jnp.float32), 0.0)
  pos, n = jnp.sum(y), jnp.sum(ok, dtype=jnp.float32)
  if axis_name is not None:
    pos, n = jax.lax.psum(pos, axis_name), jax.lax.psum(n, axis_name)
  beta = jax.lax.stop_gradient((n - pos) / jnp.maximum(n, 1.0))
  z = logits.astype(jnp.float32)
  per = -(beta * y * jax.nn.log_sigmoid(z) + (1.0 - beta) * (1.0 - y) * jax.nn.log_sigmoid(-z))
  return jnp.sum(jnp.where(ok, per, 0.0)), jnp.sum(ok, dtype=jnp.float32)
