"""CTKT: teacher selection, distillation gradients (exact zeros on the teacher), L_A / L_P / L_S /
SSIM values, SPNet's uncertainty, DSRNet-alone evaluation without RGB, configs.

Networks are the smoke size (T = N = 2, 8 features) on 16x16 HR / 4x4 LR maps; XLA's cheap
compiles (the values, not the speed, are checked).
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import set_field
from jaxseg.config_files import load_config
from jaxseg.data import pipeline, sources
from jaxseg.methods import build_method
from jaxseg.methods.ctkt import distill
from jaxseg.methods.ctkt.loss import balanced_bce_sums, denet_loss_sums, ssim_map
from jaxseg.methods.ctkt.networks import SPNet
from jaxseg.runner import config_checks

pytestmark = pytest.mark.usefixtures('fast_compile')


def smoke(*flags):
  return load_config('configs/ctkt.py:' + ','.join(('smoke',) + flags))


# -- teacher selection ------------------------------------------------------------------------

def _outputs(err_final, err_sides, b=2, h=4):
  """Fake {'depth', 'side'} whose errors against a zero target are the given constants."""
  full = lambda e: jnp.broadcast_to(jnp.asarray(e, jnp.float32).reshape(-1, 1, 1, 1),
                                    (b, h, h, 1))
  return {'depth': full(err_final), 'side': tuple(full(e) for e in err_sides)}


def test_roles_swap_when_the_errors_do():
  target, valid = jnp.zeros((2, 4, 4)), jnp.ones((2, 4, 4), bool)
  good, bad = _outputs(0.1, (0.3, 0.9)), _outputs(0.2, (0.5, 0.4))
  mask, errs = distill.teacher_mask(good, bad, target, valid)  # DSRNet better: it teaches
  assert mask.shape == (2, 2) and bool(mask.all())
  np.testing.assert_allclose([errs['err_dsr'], errs['err_de']], [0.1, 0.2], rtol=1e-6)
  assert not bool(distill.teacher_mask(bad, good, target, valid)[0].any())  # swapped
  # Per block (side-output errors): block 1 DSRNet 0.3 < 0.5, block 2 0.9 > 0.4.
  blk = distill.teacher_mask(good, bad, target, valid, granularity='block')[0]
  np.testing.assert_array_equal(blk, [[True, True], [False, False]])
  # Per sample: sample 0 DSRNet 0.1 < 0.3, sample 1 DSRNet 0.5 > 0.2.
  sr, de = _outputs([0.1, 0.5], (0.0, 0.0)), _outputs([0.3, 0.2], (0.0, 0.0))
  smp = distill.teacher_mask(sr, de, target, valid, granularity='sample')[0]
  np.testing.assert_array_equal(smp, [[True, False], [True, False]])
  # Invalid pixels do not count: a huge DSRNet error on masked pixels changes nothing.
  masked = dict(good, depth=good['depth'].at[:, 0].set(100.0))
  half = valid.at[:, 0].set(False)
  assert bool(distill.teacher_mask(masked, bad, target, half)[0].all())
  fixed = distill.teacher_mask(good, bad, target, valid, mode='de')[0]
  assert not bool(fixed.any())


def test_teacher_errors_are_reduced_over_the_global_batch():
  """Under pmap the per-device errors are psum'd: every device picks the same teacher, the one
  of the whole batch (device 0 alone would pick DENet, device 1 alone DSRNet)."""
  sr = _outputs([0.3, 0.0], (0.0,), b=2)
  de = _outputs([0.2, 0.2], (0.0,), b=2)  # global: DSRNet 0.15 < DENet 0.2
  split = lambda t: jax.tree.map(lambda a: a.reshape(2, 1, *a.shape[1:]), t)
  target, valid = jnp.zeros((2, 1, 4, 4)), jnp.ones((2, 1, 4, 4), bool)
  f = jax.vmap(lambda s, d, t, v: distill.teacher_mask(s, d, t, v, axis_name='i')[0],
               axis_name='i')
  np.testing.assert_array_equal(f(split(sr), split(de), target, valid), [[[True]], [[True]]])


# -- distillation gradients -------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny():
  """The smoke method (full CTKT) and one training batch (B=2, 16x16 HR, 4x4 LR)."""
  c = smoke()
  src = sources.make_source(c.dataset, 'train')
  method = build_method(c, src.meta)
  batch = pipeline.TrainBatches(src, method.train_transform(), c.batch_size, c.seed)[0]
  state = jax.jit(method.init_state)(jax.random.key(0), batch)
  return c, method, batch, state


def _nonzero(tree):
  return [bool(jnp.any(g != 0)) for g in jax.tree.leaves(tree)]


@pytest.mark.parametrize('teacher,student', [('dsr', 'de'), ('de', 'dsr')])
def test_distillation_puts_exactly_zero_gradient_on_the_teacher(tiny, teacher, student):
  c, method, batch, state = tiny
  c = c.copy_and_resolve_references()
  set_field(c, 'ctkt.teacher', teacher)
  m = build_method(c, {})

  def distillation(params):
    _, terms = m.ctkt_losses(params, batch)
    return terms['loss_p'] + terms['loss_a']

  grads = jax.jit(jax.grad(distillation))(state.params)
  assert not any(_nonzero(grads[teacher])), f'{teacher} (the teacher) got a gradient'
  assert not any(_nonzero(grads['sp']))
  g = grads[student]
  assert any(_nonzero(g['net'])) and any(_nonzero(g['side1'])), f'{student} got none'


def test_batch_keys_shapes_and_structure_target(tiny):
  _, method, batch, state = tiny
  assert set(method.batch_keys) == {'image', 'depth_lr', 'depth', 'valid', 'minmax',
                                    'depth_lr_up', 'structure'}
  chex.assert_shape([batch['image'], batch['structure'], batch['depth_lr']],
                    [(2, 16, 16, 3), (2, 16, 16), (2, 4, 4)])
  assert set(np.unique(batch['structure'])) <= {0.0, 1.0}
  assert set(state.params) == {'dsr', 'de', 'sp'}
  assert set(state.params['dsr']) == {'net', 'side1', 'side2'}
  assert set(method.eval_keys) == set(method.batch_keys) - {'image', 'structure'}


def test_eval_and_predict_run_dsrnet_alone_without_rgb(tiny):
  c, method, _, state = tiny
  val = sources.make_source(c.dataset, 'val')
  example = method.eval_transform()(val[0])
  assert 'image' not in example and 'structure' not in example
  batch = {k: v[None] for k, v in example.items()}
  pred = jax.device_get(jax.jit(method.predict_step)(state, batch))
  chex.assert_shape(pred['depth'], (1, 16, 16))
  sums = jax.jit(method.eval_step)(state, dict(batch, mask=np.ones(1, bool)))
  scalars, _ = method.summarize(jax.device_get(sums))
  assert np.isfinite(scalars['rmse'])
  # DSRNet's prediction depends on params['dsr']['net'] only.
  zeroed = dict(state.params, de=jax.tree.map(jnp.zeros_like, state.params['de']))
  again = jax.jit(method.predict_step)(state.replace(params=zeroed), batch)
  np.testing.assert_array_equal(again['depth'], pred['depth'])


# -- loss values ------------------------------------------------------------------------------

def _ssim_reference(x, y, size=7, sigma=1.5, max_val=1.0):
  """Wang et al. 2004 SSIM with a normalised Gaussian window, 'valid' windows, float64."""
  g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
  w = np.outer(g, g) / np.outer(g, g).sum()
  c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
  n = x.shape[0] - size + 1
  out = np.zeros((n, n))
  for i in range(n):
    for j in range(n):
      a, b = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
      mx, my = (w * a).sum(), (w * b).sum()
      vx, vy = (w * a * a).sum() - mx ** 2, (w * b * b).sum() - my ** 2
      cxy = (w * a * b).sum() - mx * my
      out[i, j] = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1)
                                                          * (vx + vy + c2))
  return out


def test_ssim_matches_the_reference_and_the_de_loss_masks():
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(12, 12))
  y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
  got = ssim_map(jnp.asarray(x[None], jnp.float32), jnp.asarray(y[None], jnp.float32),
                 filter_size=7)[0]
  np.testing.assert_allclose(got, _ssim_reference(x, y), atol=2e-5)
  valid = np.ones((1, 12, 12), bool)
  valid[0, 0, 0] = False  # one invalid pixel: the windows covering it drop out
  (ss, sn), (ls, ln) = denet_loss_sums(jnp.asarray(y[None]), jnp.asarray(x[None]),
                                       jnp.asarray(valid), filter_size=7)
  assert float(sn) == 36 - 1 and float(ln) == 143
  np.testing.assert_allclose(float(ss), ((1 - _ssim_reference(y, x)) / 2).sum()
                             - (1 - _ssim_reference(y, x)[0, 0]) / 2, rtol=1e-4)
  np.testing.assert_allclose(float(ls), np.abs(x - y)[valid[0]].sum(), rtol=1e-5)
  grad = jax.grad(lambda p: sum(s for s, _ in denet_loss_sums(
      p, jnp.asarray(x[None]), jnp.asarray(valid), filter_size=7)))(jnp.asarray(y[None]))
  # The invalid pixel: its L1 is masked and every SSIM window covering it dropped out.
  assert float(jnp.abs(grad[0, 0, 0])) == 0.0 and float(jnp.abs(grad[0, 5, 5])) > 0


def test_balanced_bce_value():
  logits = jnp.array([[[2.0, -1.0], [0.5, 3.0]]])
  labels = jnp.array([[[1.0, 0.0], [0.0, 0.0]]])
  valid = jnp.array([[[True, True], [True, False]]])
  total, count = balanced_bce_sums(logits, labels, valid)
  beta = 2 / 3  # 2 negatives of 3 valid pixels
  sp = lambda z: np.log1p(np.exp(z))  # -log sigmoid(-z)
  want = beta * sp(-2.0) + (1 - beta) * (sp(-1.0) + sp(0.5))
  np.testing.assert_allclose(float(total), want, rtol=1e-5)
  assert float(count) == 3


def test_affinity_pooling_and_rows():
  f = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3) / 50.0
  pooled = distill.pool_features(f, 2)  # k = 2
  np.testing.assert_allclose(pooled[0, 0, 0], f[0, :2, :2].mean((0, 1)), rtol=1e-6)
  a = distill.affinity(f, 2)
  chex.assert_shape(a, (2, 4, 4))
  np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-6)
  r = np.asarray(pooled[0]).reshape(4, 3)
  logits = r @ r.T
  want = np.exp(logits - logits.max(1, keepdims=True))
  np.testing.assert_allclose(a[0], want / want.sum(1, keepdims=True), rtol=1e-5)
  # A 5x5 map pooled to <= 2: k = 3, edge windows averaged over their own pixels.
  odd = distill.pool_features(jnp.ones((1, 5, 5, 1)), 2)
  chex.assert_shape(odd, (1, 2, 2, 1))
  np.testing.assert_allclose(odd, 1.0)


def test_output_distillation_value():
  sr = (jnp.full((1, 2, 2, 1), 1.0),)
  de = (jnp.full((1, 2, 2, 1), 0.25),)
  valid = jnp.array([[[True, True], [True, False]]])
  total, count = distill.output_distillation(sr, de, jnp.array([[True]]), valid)
  assert (float(total), float(count)) == (3 * 0.75, 3.0)


def test_spnet_uncertainty_is_a_softmax_over_the_two_networks():
  f = jnp.ones((1, 4, 4, 8))
  e_sr = jnp.full((1, 4, 4), 0.1)
  e_de = jnp.full((1, 4, 4), 0.5)
  net = SPNet(width=4, depth=1)
  params = net.init(jax.random.key(0), f, f, e_sr, e_de)
  u = net.apply(params, f, f, e_sr, e_de)['uncertainty']
  chex.assert_shape(u, (1, 4, 4, 2))
  np.testing.assert_allclose(u.sum(-1), 1.0, rtol=1e-6)
  # Init kernel -I: U_sr = e^-0.1 / (e^-0.1 + e^-0.5), the lower error gets more weight.
  np.testing.assert_allclose(u[0, 0, 0, 0], 1 / (1 + np.exp(-0.4)), rtol=1e-5)


# -- configs ----------------------------------------------------------------------------------

@pytest.mark.parametrize('flags', ['', 'smoke', 'nyuv2', 'middlebury,x8', 'x16,sintel',
                                   'tofmark', 'smoke,x2', 'dsr_only', 'lp_only', 'no_spnet',
                                   'fixed_teacher,x8', 'smoke,steps=7,seed=2,granularity=block'])
def test_variants_validate(flags):
  c = load_config('configs/ctkt.py' + (':' + flags if flags else ''))
  config_checks.validate(c)
  assert c.method == 'ctkt' and c.model.name == 'dbpn'
  scale = {'x2': 2, 'x8': 8, 'x16': 16}
  want = next((v for k, v in scale.items() if k in flags.split(',')), 4)
  assert c.dataset.augment.dsr_scale == want
  assert c.dataset.augment.crop_size[0] % want == 0


def test_ablation_variants():
  assert not load_config('configs/ctkt.py:dsr_only').ctkt.denet
  lp = load_config('configs/ctkt.py:lp_only').ctkt
  assert lp.lambda_a == 0 and not lp.spnet and lp.lambda_p > 0
  assert load_config('configs/ctkt.py:fixed_teacher').ctkt.teacher == 'de'
  keyed = load_config('configs/ctkt.py:smoke,steps=7,seed=2,granularity=block')
  assert (keyed.num_train_steps, keyed.seed, keyed.ctkt.teacher_granularity) == (7, 2, 'block')
  assert tuple(keyed.optimizer.boundaries) == (5,)
  with pytest.raises(ValueError, match='at most one'):
    load_config('configs/ctkt.py:dsr_only,lp_only')
  with pytest.raises(ValueError, match='unknown variant'):
    load_config('configs/ctkt.py:x3')


@pytest.mark.parametrize('path,value', [
    ('ctkt.teacher', 'best'),
    ('ctkt.teacher_granularity', 'pixel'),
    ('ctkt.affinity_norm', 'kl'),
    ('ctkt.affinity_pool', 0),
    ('ctkt.lambda_p', -1.0),
    ('ctkt.de_alpha', 1.5),
    ('ctkt.ssim_filter_size', 99),
    ('dataset.augment.structure_gt', ''),
])
def test_bad_ctkt_field_is_named(path, value):
  c = smoke()
  set_field(c, path, value)
  with pytest.raises(config_checks.ConfigError, match=r'config\.' + path.replace('.', r'\.')):
    config_checks.validate(c)
