"""CTKT cross-task distillation (ctkt_dsr.md §4): dynamic teacher, L_P (output space), L_A (affinity).

Roles. `teacher_is_dsr` says, per block i and per sample b, whether DSRNet teaches (True) or
DENet does (False); it is the (N, B) bool array of `teacher_mask`. The student's term is

  |x_student - stop_gradient(x_teacher)|,

chosen per element with `jnp.where`: the unchosen direction's cotangent is exactly zero and the
teacher's side is a stop_gradient, so the distillation terms put exactly zero gradient on the
teacher's parameters (tests/methods/test_ctkt.py checks both directions).

Teacher selection (§4.3 [review], per train step; `granularity`):
  'batch'   one role per step: the network with the lower masked mean |D - D_hr| of its final
            output over the GLOBAL batch (sums and counts psum'd over `axis_name` under pmap,
            so every device picks the same teacher);
  'sample'  per sample, from each sample's own masked mean error (local, no reduction needed);
  'block'   per block i, from the side outputs' masked mean errors over the global batch.
Ties go to DSRNet. `mode` 'dynamic' (the above), 'dsr' or 'de' (a fixed teacher).

L_P = sum_i mean over valid pixels of |D_s^i - sg(D_t^i)| (side outputs, (B, H, W, 1)).
L_A = sum_i mean over samples of mean |A_s^i - sg(A_t^i)| (L1) or squared (L2), where for
features F (B, H, W, C): F is average-pooled by an integer factor to at most `pool` x `pool`,
R = reshape to (B, hw, C), A = softmax(R R^T) over each row (§4.1 [review]; (B, hw, hw)).
"""
import math

import jax
import jax.numpy as jnp

from jaxseg.methods.ctkt.checks import AFFINITY_NORMS, GRANULARITIES, TEACHER_MODES


def _sum_all(x, axis_name):
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def masked_abs_error(pred, target, valid):
  """Per-sample (sum of |pred - target| over valid pixels, valid count): two (B,) float32.

  pred (B, H, W) or (B, H, W, 1); target (B, H, W); valid (B, H, W) bool."""
  if pred.ndim == 4:
    pred = pred[..., 0]
  ok = valid.astype(bool) & jnp.isfinite(target)
  err = jnp.where(ok, jnp.abs(pred.astype(jnp.float32) - jnp.where(ok, target, 0.0)), 0.0)
  return jnp.sum(err, axis=(1, 2)), jnp.sum(ok, axis=(1, 2), dtype=jnp.float32)


def _mean_error(pred, target, valid, per_sample, axis_name):
  s, n = masked_abs_error(pred, target, valid)
  if per_sample:
    return s / jnp.maximum(n, 1.0)
  s, n = _sum_all(jnp.sum(s), axis_name), _sum_all(jnp.sum(n), axis_name)
  return s / jnp.maximum(n, 1.0)


def teacher_mask(sr, de, target, valid, mode='dynamic', granularity='batch', axis_name=None):
  """(N, B) bool, True where DSRNet teaches block i of sample b, and the errors compared.

  sr / de: {'depth': (B, H, W, 1), 'side': N maps (B, H, W, 1)} of DSRNet / DENet (the
  stop-gradient is applied here); target (B, H, W); valid (B, H, W) bool.
  Returns (mask, {'err_dsr', 'err_de'}: the compared errors, averaged to scalars).
  """
  if mode not in TEACHER_MODES:
    raise ValueError(f'teacher mode must be one of {TEACHER_MODES}, got {mode!r}')
  if granularity not in GRANULARITIES:
    raise ValueError(f'teacher granularity must be one of {GRANULARITIES}, got {granularity!r}')
  sg = jax.lax.stop_gradient
  n_blocks, batch = len(sr['side']), target.shape[0]
  if granularity == 'block':
    e_sr = jnp.stack([_mean_error(sg(d), target, valid, False, axis_name) for d in sr['side']])
    e_de = jnp.stack([_mean_error(sg(d), target, valid, False, axis_name) for d in de['side']])
    shaped = lambda m: jnp.broadcast_to(m[:, None], (n_blocks, batch))
  else:
    per_sample = granularity == 'sample'
    e_sr = _mean_error(sg(sr['depth']), target, valid, per_sample, axis_name)
    e_de = _mean_error(sg(de['depth']), target, valid, per_sample, axis_name)
    shaped = lambda m: jnp.broadcast_to(m, (n_blocks, batch))
  if mode == 'dynamic':
    mask = e_sr <= e_de
  else:
    mask = jnp.full(e_sr.shape, mode == 'dsr')
  return shaped(mask), {'err_dsr': jnp.mean(e_sr), 'err_de': jnp.mean(e_de)}


def _directed(a, b, teacher_is_a, norm='l1'):
  """Per element: |b - sg(a)| where a teaches, |a - sg(b)| where b does (L1 or squared)."""
  sg = jax.lax.stop_gradient
  f = jnp.abs if norm == 'l1' else jnp.square
  return jnp.where(teacher_is_a, f(b - sg(a)), f(a - sg(b)))


def output_distillation(sr_sides, de_sides, mask, valid):
  """L_P: sum over blocks of (local sum over valid pixels, global count is the caller's).

  sr_sides / de_sides: N maps (B, H, W, 1); mask (N, B) bool (DSRNet teaches); valid (B, H, W).
  Returns (total, count): the sum over blocks of the valid-pixel sums, and the valid pixels of
  ONE block (divide with `global_mean`: the result is sum_i mean_i)."""
  ok = valid.astype(bool)
  total = 0.0
  for i, (a, b) in enumerate(zip(sr_sides, de_sides)):
    per = _directed(a[..., 0].astype(jnp.float32), b[..., 0].astype(jnp.float32),
                    mask[i][:, None, None])
    total = total + jnp.sum(jnp.where(ok, per, 0.0))
  return total, jnp.sum(ok, dtype=jnp.float32)


def pool_features(f, pool):
  """(B, H, W, C) -> (B, ceil(H / k), ceil(W / k), C) average pool by k = ceil(max(H, W) / pool)
  (a non-overlapping window; edge windows are averaged over their pixels), float32."""
  b, h, w, c = f.shape
  k = max(1, math.ceil(max(h, w) / pool))
  if k == 1:
    return f.astype(jnp.float32)
  ph, pw = -h % k, -w % k
  x = jnp.pad(f.astype(jnp.float32), ((0, 0), (0, ph), (0, pw), (0, 0)))
  ones = jnp.pad(jnp.ones((1, h, w, 1), jnp.float32), ((0, 0), (0, ph), (0, pw), (0, 0)))
  shape = lambda t: t.reshape(t.shape[0], (h + ph) // k, k, (w + pw) // k, k, t.shape[-1])
  return shape(x).sum((2, 4)) / shape(ones).sum((2, 4))


def affinity(f, pool=32):
  """(B, H, W, C) -> (B, hw, hw) row-softmax(R R^T) of the pooled features (module docstring)."""
  r = pool_features(f, pool)
  r = r.reshape(r.shape[0], -1, r.shape[-1])
  return jax.nn.softmax(jnp.einsum('bpc,bqc->bpq', r, r), axis=-1)


def affinity_distillation(sr_feats, de_feats, mask, pool=32, norm='l1'):
  """L_A: (local sum over samples of per-sample means, summed over blocks; local sample count).

  sr_feats / de_feats: N maps (B, H, W, C); mask (N, B) bool (DSRNet teaches)."""
  if norm not in AFFINITY_NORMS:
    raise ValueError(f'affinity norm must be one of {AFFINITY_NORMS}, got {norm!r}')
  total = 0.0
  for i, (fa, fb) in enumerate(zip(sr_feats, de_feats)):
    per = _directed(affinity(fa, pool), affinity(fb, pool), mask[i][:, None, None], norm)
    total = total + jnp.sum(jnp.mean(per, axis=(1, 2)))
  return total, jnp.float32(sr_feats[0].shape[0])
