"""Cross-entropy with ignore, global_mean under a mapped axis, and the DeepLab v2 MSC loss."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.losses import reduce, segmentation as seg


def np_ce_mean(logits, labels, ignore=255):
  """Reference: mean over valid pixels of -log softmax[label] (float64)."""
  logits = np.asarray(logits, np.float64)
  labels = np.asarray(labels)
  lse = np.log(np.exp(logits).sum(-1))
  valid = (labels != ignore) & (labels >= 0) & (labels < logits.shape[-1])
  picked = np.take_along_axis(logits, np.where(valid, labels, 0)[..., None], -1)[..., 0]
  nll = np.where(valid, lse - picked, 0.0)
  return nll.sum() / max(valid.sum(), 1)


LOGITS = np.array([[[[0., 0., 0.], [1., 2., 3.]],
                    [[2., 0., 0.], [0., 1., 0.]]]], np.float32)  # (1, 2, 2, 3)
LABELS = np.array([[[0, 255], [2, 1]]], np.int32)  # pixel (0, 1) ignored


def test_cross_entropy_hand_computed():
  # Valid pixels: [0,0,0] label 0 -> log 3; [2,0,0] label 2 -> log(e^2 + 2);
  # [0,1,0] label 1 -> log(e + 2) - 1.
  expected = (np.log(3.) + np.log(np.e**2 + 2) + np.log(np.e + 2) - 1) / 3
  total, count = seg.cross_entropy_sum(LOGITS, LABELS)
  chex.assert_trees_all_close(count, 3.0)
  chex.assert_trees_all_close(total, 3 * expected, rtol=1e-6)
  chex.assert_trees_all_close(seg.cross_entropy(LOGITS, LABELS), expected, rtol=1e-6)
  chex.assert_trees_all_close(np_ce_mean(LOGITS, LABELS), expected, rtol=1e-12)


def test_cross_entropy_gradient_zero_at_ignored_pixels():
  grad = jax.grad(seg.cross_entropy)(jnp.asarray(LOGITS), LABELS)
  np.testing.assert_array_equal(np.asarray(grad[0, 0, 1]), np.zeros(3))  # exactly zero
  probs = jax.nn.softmax(LOGITS, -1)
  onehot = jax.nn.one_hot(np.where(LABELS == 255, 0, LABELS), 3) * (LABELS != 255)[..., None]
  chex.assert_trees_all_close(grad, (probs - onehot) * (LABELS != 255)[..., None] / 3,
                              atol=1e-6)


def test_ignored_value_change_does_not_matter_and_bf16_ok():
  other = LOGITS.copy()
  other[0, 0, 1] = [100., -50., 7.]
  chex.assert_trees_all_close(seg.cross_entropy(other, LABELS), seg.cross_entropy(LOGITS, LABELS))
  out = seg.cross_entropy(jnp.asarray(LOGITS, jnp.bfloat16), LABELS)
  assert out.dtype == jnp.float32
  chex.assert_trees_all_close(out, np_ce_mean(LOGITS, LABELS), rtol=1e-2)


def test_all_ignored_is_zero_with_finite_grad():
  labels = np.full((1, 2, 2), 255, np.int32)
  value, grad = jax.value_and_grad(seg.cross_entropy)(jnp.asarray(LOGITS), labels)
  assert float(value) == 0.0
  np.testing.assert_array_equal(np.asarray(grad), np.zeros_like(LOGITS))


def test_out_of_range_label_and_weights():
  labels = LABELS.copy()
  labels[0, 1, 1] = 7  # outside [0, K): ignored, no NaN
  ref = labels.copy()
  ref[0, 1, 1] = 255
  chex.assert_trees_all_close(seg.cross_entropy(LOGITS, labels), seg.cross_entropy(LOGITS, ref))
  weights = np.array([[[1., 1.], [0., 1.]]], np.float32)  # drop pixel (1, 0)
  chex.assert_trees_all_close(seg.cross_entropy(LOGITS, LABELS, weights=weights),
                              seg.cross_entropy(LOGITS, np.where(weights > 0, LABELS, 255)))
  # Per-example weights (eval padding mask) broadcast over pixels.
  _, count = seg.cross_entropy_sum(np.concatenate([LOGITS] * 2), np.concatenate([LABELS] * 2),
                                   weights=np.array([1., 0.]))
  chex.assert_trees_all_close(count, 3.0)


def test_global_mean_under_mapped_axis_matches_global_mean():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(4, 3, 2, 5)).astype(np.float32)
  labels = rng.integers(0, 5, size=(4, 3, 2)).astype(np.int32)
  labels[0] = 255  # shard 0: no valid pixel
  labels[1, :2] = 255  # unequal valid counts per shard

  def sharded_loss(x):  # 4 "devices" holding one example each; psum of per-device shares
    per_dev = jax.vmap(functools.partial(seg.cross_entropy, axis_name='d'), axis_name='d')(
        x[:, None], labels[:, None])
    return per_dev.sum()

  v1, g1 = jax.jit(jax.value_and_grad(sharded_loss))(logits)
  v2, g2 = jax.jit(jax.value_and_grad(seg.cross_entropy))(logits, labels)
  chex.assert_trees_all_close(v1, v2, np_ce_mean(logits, labels), rtol=1e-5)
  chex.assert_trees_all_close(g1, g2, atol=1e-7)

  # Bare global_mean: per-shard totals / global count; count is a constant.
  totals, counts = jnp.array([1., 2., 3.]), jnp.array([0., 2., 4.])
  shares = jax.vmap(lambda t, c: reduce.global_mean(t, c, 'i'), axis_name='i')(totals, counts)
  chex.assert_trees_all_close(shares.sum(), 1.0)
  chex.assert_trees_all_close(reduce.global_mean(0.0, 0.0), 0.0)
  grad = jax.grad(lambda t, c: reduce.global_mean(t, c), argnums=(0, 1))(2.0, 4.0)
  chex.assert_trees_all_close(grad, (0.25, 0.0))


def test_msc_loss_is_sum_of_four_terms():
  rng = np.random.default_rng(1)
  k = 3
  labels = rng.integers(0, k, size=(1, 6, 6)).astype(np.int32)
  labels[0, 1, 1] = 255
  labels[0, 4, 4] = 255
  fused = rng.normal(size=(1, 3, 3, k)).astype(np.float32)
  s100 = rng.normal(size=(1, 3, 3, k)).astype(np.float32)
  s075 = rng.normal(size=(1, 2, 2, k)).astype(np.float32)
  s050 = rng.normal(size=(1, 1, 1, k)).astype(np.float32)
  # PIL NEAREST samples source index floor((i + 0.5) * in / out).
  l3 = labels[:, [1, 3, 5]][:, :, [1, 3, 5]]  # 6 -> 3
  l2 = labels[:, [1, 4]][:, :, [1, 4]]  # 6 -> 2
  l1 = labels[:, [3]][:, :, [3]]  # 6 -> 1
  assert l3[0, 0, 0] == 255 and l2[0, 1, 1] == 255  # ignore labels survive downsampling
  np.testing.assert_array_equal(np.asarray(seg.resize_labels(labels, (2, 2))), l2)
  expected = (np_ce_mean(fused, l3) + np_ce_mean(s100, l3) + np_ce_mean(s075, l2)
              + np_ce_mean(s050, l1))
  outputs = {'logits': fused, 'scale_logits': (s100, s075, s050)}
  loss = jax.jit(seg.msc_cross_entropy)(outputs, labels)
  chex.assert_trees_all_close(loss, expected, rtol=1e-5)
  assert len(seg.msc_cross_entropy_terms(outputs, labels)) == 4
