"""Depth, normals, contour losses and the PAD-Net combined loss on hand-made inputs."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.losses.contours import balanced_bce, balanced_bce_sum, contour_pos_weight
from jaxseg.losses.depth import depth_loss, depth_loss_sum, match_resolution
from jaxseg.losses.normals import normals_loss, normals_loss_sum
from jaxseg.losses.segmentation import cross_entropy
from jaxseg.methods.padnet.loss import PAPER_LOSS_WEIGHTS, SURVEY_NYUD_LOSS_WEIGHTS, padnet_loss

f32 = functools.partial(jnp.asarray, dtype=jnp.float32)


pytestmark = pytest.mark.usefixtures('fast_compile')  # tiny models: cheaper XLA compiles


# ---------------------------------------------------------------------------------------- depth

PRED = f32([[[1.0, 2.0], [3.0, 4.0]]])
TARGET = f32([[[2.0, 0.0], [3.0, 6.0]]])  # (0, 1) invalid (depth 0)


def test_depth_l1_l2_values():
  # valid: |1-2| + |3-3| + |4-6| = 3 over 3 pixels.
  np.testing.assert_allclose(depth_loss(PRED, TARGET, kind='l1'), 1.0)
  np.testing.assert_allclose(depth_loss(PRED, TARGET, kind='l2'), 5.0 / 3.0, rtol=1e-6)
  s, c = depth_loss_sum(PRED[..., None], TARGET, kind='l1')  # NHW1 input accepted
  np.testing.assert_allclose((s, c), (3.0, 3.0))
  valid = jnp.array([[[True, True], [False, True]]])
  np.testing.assert_allclose(depth_loss(PRED, TARGET, valid, kind='l1'), 1.5)


def test_depth_masked_pixels_get_zero_gradient():
  valid = jnp.array([[[True, True], [False, True]]])
  target = TARGET.at[0, 0, 0].set(jnp.nan)  # non-finite target: invalid, no NaN gradient
  g = jax.grad(lambda p: depth_loss(p, target, valid, kind='l1'))(PRED)
  np.testing.assert_array_equal(g, [[[0.0, 0.0], [0.0, -1.0]]])
  g2 = jax.grad(lambda p: depth_loss(p, TARGET, kind='l2'))(PRED)
  np.testing.assert_allclose(g2, [[[-2 / 3, 0.0], [0.0, -4 / 3]]], rtol=1e-6)
  assert g2[0, 0, 1] == 0.0


def test_depth_all_invalid_is_zero():
  np.testing.assert_array_equal(depth_loss(PRED, jnp.zeros_like(TARGET)), 0.0)


def test_depth_resize_modes():
  pred = f32([[[1.0, 2.0], [3.0, 4.0]]])
  target = jnp.repeat(jnp.repeat(f32([[[2.0, 2.0], [0.0, 5.0]]]), 2, 1), 2, 2)  # (1, 4, 4)
  # 'target': nearest-downsampled target equals the 2x2 block values.
  np.testing.assert_allclose(depth_loss(pred, target, kind='l1', resize='target'), 2.0 / 3,
                             rtol=1e-6)  # (1 + 0 + 1) / 3
  # 'prediction': a constant prediction stays constant when upsampled.
  const = jnp.full((1, 2, 2), 3.0)
  np.testing.assert_allclose(depth_loss(const, target, kind='l1', resize='prediction'),
                             (8 * 1.0 + 4 * 2.0) / 12)
  p, (t, v) = match_resolution(pred[..., None], (target, None), 'target')
  chex.assert_shape((p, t), ((1, 2, 2, 1), (1, 2, 2)))
  assert v is None
  with pytest.raises(ValueError):
    depth_loss(pred, target, resize='both')


# -------------------------------------------------------------------------------------- normals

def _normals():
  gt = f32([[[[0, 0, 1], [1, 0, 0]], [[0, 1, 0], [0, 0, 0]]]])  # last pixel: missing normal
  pred = f32([[[[0, 0, 3], [0, 2, 0]], [[0, -1, 0], [1, 1, 1]]]])  # 0 deg, 90 deg, 180 deg
  return pred, gt


def test_normals_identical_vectors_zero_loss():
  pred, gt = _normals()
  for kind in ('cosine', 'l1', 'l2'):
    np.testing.assert_allclose(normals_loss(5.0 * gt, gt, kind=kind), 0.0, atol=1e-7)


def test_normals_values():
  pred, gt = _normals()
  # cosine: 1 - cos over (0, 90, 180) deg = 0 + 1 + 2 over 3 valid pixels.
  np.testing.assert_allclose(normals_loss(pred, gt, kind='cosine'), 1.0, rtol=1e-6)
  # l1: sum |p - n| per pixel = 0 + 2 + 2, over 3 pixels x 3 components.
  np.testing.assert_allclose(normals_loss(pred, gt, kind='l1'), 4.0 / 9.0, rtol=1e-6)
  # l2: |p - n|^2 = 2 (1 - cos) = 0 + 2 + 4 over 3 pixels.
  np.testing.assert_allclose(normals_loss(pred, gt, kind='l2'), 2.0, rtol=1e-6)
  valid = jnp.array([[[True, False], [True, True]]])
  np.testing.assert_allclose(normals_loss(pred, gt, valid, kind='cosine'), 1.0, rtol=1e-6)
  s, c = normals_loss_sum(pred, gt, kind='l1')
  np.testing.assert_allclose(c, 9.0)


def test_normals_masked_pixels_get_zero_gradient():
  pred, gt = _normals()
  valid = jnp.array([[[True, False], [True, True]]])
  for kind in ('cosine', 'l1', 'l2'):
    g = jax.grad(lambda p: normals_loss(p, gt, valid, kind=kind))(pred)
    chex.assert_tree_all_finite(g)
    np.testing.assert_array_equal(g[0, 0, 1], 0.0)  # valid=False
    np.testing.assert_array_equal(g[0, 1, 1], 0.0)  # zero target vector
  g = jax.grad(lambda p: normals_loss(p, gt, valid, kind='cosine'))(pred)
  # Identical direction: the cosine gradient is orthogonal to the prediction, here zero.
  np.testing.assert_allclose(g[0, 0, 0], 0.0, atol=1e-7)


# ------------------------------------------------------------------------------------- contours

def test_balanced_bce_weights_and_value():
  target = jnp.array([[[1, 0], [0, 0]]], jnp.uint8)
  logits = f32([[[0.5, -1.0], [2.0, 0.0]]])
  beta = 3.0 / 4.0  # |Y-| / |Y|
  np.testing.assert_allclose(contour_pos_weight(target), beta)
  sp = lambda x: np.log1p(np.exp(x))  # -log(1 - sigmoid(x)) = softplus(x)
  want = (beta * sp(-0.5) + (1 - beta) * (sp(-1.0) + sp(2.0) + sp(0.0))) / 4
  np.testing.assert_allclose(balanced_bce(logits, target), want, rtol=1e-6)
  np.testing.assert_allclose(balanced_bce_sum(logits, target), (4 * want, 4.0), rtol=1e-6)
  # Fixed weight (MTL-PyTorch uses 0.95).
  want = (0.95 * sp(-0.5) + 0.05 * (sp(-1.0) + sp(2.0) + sp(0.0))) / 4
  np.testing.assert_allclose(balanced_bce(logits, target, pos_weight=0.95), want, rtol=1e-6)
  # Masking changes the class balance: 1 positive of 2 valid pixels -> beta 1/2.
  valid = jnp.array([[[True, True], [False, False]]])
  np.testing.assert_allclose(contour_pos_weight(target, valid), 0.5)
  np.testing.assert_allclose(balanced_bce(logits, target, valid),
                             0.5 * (sp(-0.5) + sp(-1.0)) / 2, rtol=1e-6)
  # 0/255 edge maps and NHW1 logits work as well.
  np.testing.assert_allclose(balanced_bce(logits[..., None], target * 255),
                             balanced_bce(logits, target), rtol=1e-6)


def test_balanced_bce_gradient():
  target = jnp.array([[[1, 0], [0, 0]]], jnp.uint8)
  logits = f32([[[0.0, 0.0], [0.0, 0.0]]])
  valid = jnp.array([[[True, True], [True, False]]])
  g = jax.grad(lambda x: balanced_bce(x, target, valid))(logits)
  beta = 2.0 / 3.0
  # d/dx [beta softplus(-x)] = -beta sigmoid(-x); d/dx [(1-beta) softplus(x)] = (1-beta) sigmoid(x)
  np.testing.assert_allclose(g, [[[-beta * 0.5 / 3, (1 - beta) * 0.5 / 3],
                                  [(1 - beta) * 0.5 / 3, 0.0]]], rtol=1e-6)
  assert g[0, 1, 1] == 0.0


def test_axis_name_matches_whole_batch():
  rng = np.random.default_rng(0)
  logits = f32(rng.normal(size=(4, 3, 3)))
  target = jnp.asarray(rng.random((4, 3, 3)) < 0.3, jnp.uint8)
  depth_t = f32(rng.uniform(0, 2, (4, 3, 3))).at[0].set(0.0)  # uneven valid counts per shard
  whole = (balanced_bce(logits, target), depth_loss(logits, depth_t))
  split = lambda x: x.reshape((2, 2) + x.shape[1:])
  per_dev = jax.vmap(lambda l, t, d: (balanced_bce(l, t, axis_name='i'),
                                      depth_loss(l, d, axis_name='i')),
                     axis_name='i')(split(logits), split(target), split(depth_t))
  np.testing.assert_allclose([per_dev[0].sum(), per_dev[1].sum()], whole, rtol=1e-6)


# ------------------------------------------------------------------------------------ padnet_loss

def _outputs_and_batch(seed=0, b=2, h=8, w=8, k=3):
  rng = np.random.default_rng(seed)
  outputs = {
      'logits': f32(rng.normal(size=(b, h, w, k))),
      'depth': f32(rng.uniform(0.5, 3, (b, h, w))),
      'intermediate': {'depth': f32(rng.uniform(0.5, 3, (b, h // 4, w // 4))),
                       'normals': f32(rng.normal(size=(b, h // 4, w // 4, 3))),
                       'parsing': f32(rng.normal(size=(b, h // 4, w // 4, k))),
                       'contours': f32(rng.normal(size=(b, h // 4, w // 4)))}}
  batch = {'label': jnp.asarray(rng.integers(0, k, (b, h, w)), jnp.int32).at[0, 0].set(255),
           'depth': f32(rng.uniform(0, 3, (b, h, w))).at[:, :2].set(0.0),
           'normals': f32(rng.normal(size=(b, h, w, 3))),
           'contours': jnp.asarray(rng.random((b, h, w)) < 0.2, jnp.uint8),
           'valid': jnp.asarray(rng.random((b, h, w)) < 0.9)}
  return outputs, batch


def test_padnet_loss_combines_terms():
  outputs, batch = _outputs_and_batch()
  total, terms = padnet_loss(outputs, batch, SURVEY_NYUD_LOSS_WEIGHTS, depth_kind='l1',
                             normals_kind='l1', contour_pos_weight=0.95)
  # Each task masked by its own validity: `valid` (depth) restricts only the depth terms.
  v, inter = batch['valid'], outputs['intermediate']
  assert not v.all()
  want = {
      'depth': depth_loss(outputs['depth'], batch['depth'], v, 'l1'),
      'parsing': cross_entropy(outputs['logits'], batch['label']),
      'inter_depth': depth_loss(inter['depth'], batch['depth'], v, 'l1'),
      'inter_normals': normals_loss(inter['normals'], batch['normals'], None, 'l1'),
      'inter_contours': balanced_bce(inter['contours'], batch['contours'], None, 0.95),
      'inter_parsing': cross_entropy(
          jax.image.resize(inter['parsing'], (2, 8, 8, 3), 'bilinear', antialias=False),
          batch['label'])}
  assert set(terms) == set(want)
  for name, value in want.items():
    np.testing.assert_allclose(terms[name], value, rtol=1e-5, err_msg=name)
  np.testing.assert_allclose(
      total, sum(SURVEY_NYUD_LOSS_WEIGHTS[n] * want[n] for n in want), rtol=1e-5)
  # Paper defaults: L2 depth/normals, 0.8 on the intermediate terms.
  total, terms = padnet_loss(outputs, batch)
  np.testing.assert_allclose(total, sum(PAPER_LOSS_WEIGHTS[n] * terms[n] for n in terms),
                             rtol=1e-6)
  np.testing.assert_allclose(terms['depth'], depth_loss(outputs['depth'], batch['depth'], v, 'l2'))


def test_padnet_loss_skips_and_masks():
  outputs, batch = _outputs_and_batch()
  # Single-task outputs: only the depth term.
  total, terms = padnet_loss({'depth': outputs['depth']}, batch, PAPER_LOSS_WEIGHTS)
  assert set(terms) == {'depth'}
  # Zero or missing weights skip terms; unknown names raise.
  _, terms = padnet_loss(outputs, batch, {'parsing': 1.0, 'inter_normals': 0.0})
  assert set(terms) == {'parsing'}
  with pytest.raises(ValueError):
    padnet_loss(outputs, batch, {'normals': 1.0})
  with pytest.raises(KeyError):
    padnet_loss(outputs, {k: v for k, v in batch.items() if k != 'normals'}, {'inter_normals': 1.})
  # The per-example mask removes example 1 from every term.
  masked = dict(batch, mask=jnp.array([True, False]))
  t1, _ = padnet_loss(outputs, masked)
  first = jax.tree.map(lambda x: x[:1], (outputs, batch))
  t2, _ = padnet_loss(*first)
  np.testing.assert_allclose(t1, t2, rtol=1e-5)
  # The same with a mask and no per-pixel validity.
  no_valid = {k: v for k, v in masked.items() if k != 'valid'}
  t3, terms3 = padnet_loss(outputs, no_valid)
  first = jax.tree.map(lambda x: x[:1], (outputs, {k: v for k, v in batch.items() if k != 'valid'}))
  t4, terms4 = padnet_loss(*first)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), (t3, terms3), (t4, terms4))


def test_padnet_loss_target_resize_and_grad():
  outputs, batch = _outputs_and_batch()
  total, terms = padnet_loss(outputs, batch, resize='target')
  chex.assert_tree_all_finite((total, terms))
  grads = jax.grad(lambda o: padnet_loss(o, batch)[0])(outputs)
  chex.assert_tree_all_finite(grads)
  # Pixels without valid depth (rows 0, 1) get no gradient from the final depth term.
  g = jax.grad(lambda d: padnet_loss(dict(outputs, depth=d), batch, {'depth': 1.0})[0])(
      outputs['depth'])
  np.testing.assert_array_equal(g[:, :2], 0.0)
  # ... but parsing still trains there (sky and stereo holes on Cityscapes have labels): the
  # parsing gradient reaches every labelled pixel whatever `valid` says.
  no_depth = dict(batch, valid=jnp.zeros_like(batch['valid']))
  g = jax.grad(lambda lg: padnet_loss(dict(outputs, logits=lg), no_depth, {'parsing': 1.0})[0])(
      outputs['logits'])
  labelled = np.asarray(batch['label']) != 255
  assert (np.abs(np.asarray(g)).sum(-1)[labelled] > 0).all()
  assert (np.asarray(g)[~labelled] == 0).all()
