"""DSRNet alone (`configs/ctkt.py:dsr_only`): loss, units and metrics, training, configs.

The network is the smoke size (T=2, 8 features) on 16x16 HR / 4x4 LR maps; XLA optimisations
are off (compiles dominate).
"""
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import set_field
from jaxseg.runner import config_checks
from jaxseg.config_files import load_config
from jaxseg.data import pipeline, sources
from jaxseg.methods import build_method
from jaxseg.methods.ctkt.loss import dsr_loss_sum
from jaxseg.methods.ctkt.metrics import border_mask, error_sums, summarize_errors, to_units
from jaxseg.methods.ctkt.dsr_method import DsrMethod
from jaxseg.losses.reduce import global_mean


pytestmark = pytest.mark.usefixtures('fast_compile')  # tiny models: cheaper XLA compiles


def smoke(*flags):
  return load_config('configs/ctkt.py:' + ','.join(('smoke', 'dsr_only') + flags))


# -- loss -------------------------------------------------------------------------------------

def test_l1_loss_value_gradient_and_masked_pixels():
  pred = jnp.array([[[0.5, 0.2], [0.9, 7.0]]])     # (1, 2, 2)
  target = jnp.array([[[0.0, 0.4], [1.0, jnp.nan]]])
  valid = jnp.array([[[True, True, ], [False, True]]])
  total, count = dsr_loss_sum(pred, target, valid, 'l1')
  # Valid: (0,0) |0.5 - 0| and (0,1) |0.2 - 0.4|; (1,0) masked, (1,1) target not finite.
  np.testing.assert_allclose(total, 0.7, rtol=1e-6)
  assert float(count) == 2.0
  grad = jax.grad(lambda p: global_mean(*dsr_loss_sum(p, target, valid, 'l1')))(pred)
  np.testing.assert_allclose(grad, [[[0.5, -0.5], [0.0, 0.0]]])
  # Masked pixels contribute nothing, whatever their prediction.
  moved = pred.at[0, 1, :].set(1e6)
  np.testing.assert_allclose(dsr_loss_sum(moved, target, valid, 'l1')[0], total)
  # (B, H, W, 1) predictions, L2 kind.
  total2, _ = dsr_loss_sum(pred[..., None], target, valid, 'l2')
  np.testing.assert_allclose(total2, 0.25 + 0.04, rtol=1e-6)
  with pytest.raises(ValueError, match='kind'):
    dsr_loss_sum(pred, target, valid, 'huber')


# -- units and metrics ------------------------------------------------------------------------

def test_to_units_denormalises_with_minmax():
  values = np.array([[[0.0, 0.5], [1.0, 0.25]]], np.float32)
  minmax = np.array([[1.0, 3.0]], np.float32)  # metres
  np.testing.assert_allclose(to_units(values, minmax, True, 100.0),
                             [[[100.0, 200.0], [300.0, 150.0]]])  # cm
  np.testing.assert_allclose(to_units(jnp.asarray(values), jnp.asarray(minmax), True, 100.0),
                             [[[100.0, 200.0], [300.0, 150.0]]], rtol=1e-6)
  np.testing.assert_allclose(to_units(values, None, False, 255.0), values * 255.0)


def test_error_sums_per_image_and_pixel_wise():
  target = jnp.zeros((2, 2, 2))
  pred = jnp.array([[[3.0, 4.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
  ok = jnp.array([[[True, True], [False, False]], [[True, True], [True, True]]])
  s = summarize_errors(jax.device_get(error_sums(pred, target, ok)))
  # Image 1: errors 3, 4 -> RMSE sqrt(12.5), MAD 3.5; image 2: RMSE 1, MAD 1.
  np.testing.assert_allclose(s['rmse'], (np.sqrt(12.5) + 1.0) / 2, rtol=1e-6)
  np.testing.assert_allclose(s['mad'], (3.5 + 1.0) / 2, rtol=1e-6)
  np.testing.assert_allclose(s['rmse_pixel'], np.sqrt((9 + 16 + 4) / 6), rtol=1e-6)
  np.testing.assert_allclose(s['mad_pixel'], 11 / 6, rtol=1e-6)
  assert (s['count'], s['images']) == (6, 2)
  assert border_mask(5, 6, 1).sum() == 3 * 4 and not border_mask(5, 6, 1)[0].any()


def test_eval_step_reports_in_cm_after_denormalising():
  """NYU protocol: normalised maps, min/max in metres -> RMSE in cm, border and mask honoured."""
  c = smoke()
  c.evaluation.border = 1
  method = DsrMethod(c, {})
  b, h = 2, 8
  target = np.full((b, h, h), 0.5, np.float32)
  up = target + np.float32(0.1)  # bicubic off by 0.1 (normalised)
  batch = {'depth': target, 'depth_lr_up': up, 'depth_lr': np.zeros((b, 2, 2), np.float32),
           'valid': np.ones((b, h, h), bool), 'minmax': np.array([[1.0, 2.0], [1.0, 3.0]],
                                                                 np.float32),
           'mask': np.array([True, False])}  # the second example is padding
  method._net = lambda params, batch, train=False: jnp.asarray(batch['depth']) - 0.2  # pylint: disable=protected-access
  state = types.SimpleNamespace(params=None)
  sums = jax.device_get(jax.jit(lambda b: method.eval_step(state, b))(batch))
  scalars, report = method.summarize(sums)
  # Example 1 spans 1 m: 0.2 -> 20 cm, 0.1 -> 10 cm; the padding example counts for nothing.
  np.testing.assert_allclose(scalars['rmse'], 20.0, rtol=1e-5)
  np.testing.assert_allclose(scalars['mad_pixel'], 20.0, rtol=1e-5)
  np.testing.assert_allclose(scalars['bicubic/rmse'], 10.0, rtol=1e-5)
  assert int(sums['dsrnet']['count']) == (h - 2) ** 2 and int(sums['dsrnet']['images']) == 1
  assert 'cm' in report and 'bicubic' in report


# -- training ---------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tiny():
  """The smoke config's method and one fixed training batch (B=2, 16x16 HR, 4x4 LR)."""
  c = smoke()
  c.optimizer.update(learning_rate=2e-3, schedule='constant')
  src = sources.make_source(c.dataset, 'train')
  method = build_method(c, src.meta)
  batch = pipeline.TrainBatches(src, method.train_transform(), c.batch_size, c.seed)[0]
  return method, batch


def test_resumed_batches_equal_uninterrupted():
  """A run resumed at step 3 draws exactly the batches (random crops, flips, LR maps) that an
  uninterrupted run draws at steps 3 and 4."""
  c = smoke()
  src = sources.make_source(c.dataset, 'train')
  method = build_method(c, src.meta)
  batches = pipeline.TrainBatches(src, method.train_transform(), c.batch_size, c.seed)
  straight = list(batches.iterate(0, 5, num_threads=1))
  resumed = list(batches.iterate(3, 5, num_threads=1))
  assert len(resumed) == 2 and set(resumed[0]) == set(method.batch_keys)
  for want, got in zip(straight[3:], resumed):
    for k in want:
      np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  assert not np.array_equal(straight[3]['depth'], straight[4]['depth'])


def test_batch_keys_and_shapes(tiny):
  method, batch = tiny
  assert set(method.batch_keys) == {'depth_lr', 'depth', 'valid', 'minmax', 'depth_lr_up'}
  assert set(method.init_state(jax.random.key(0), batch).params) == {'dsr'}
  chex.assert_shape([batch['depth_lr'], batch['depth'], batch['depth_lr_up']],
                    [(2, 4, 4), (2, 16, 16), (2, 16, 16)])
  assert batch['depth'].min() >= 0.0 and batch['depth'].max() <= 1.0  # min-max normalised


def test_train_steps_reduce_the_loss(tiny):
  method, batch = tiny
  state = jax.jit(method.init_state)(jax.random.key(0), {k: v[:1] for k, v in batch.items()})
  assert state.batch_stats == {}
  step = jax.jit(method.train_step)
  losses = []
  for _ in range(8):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert int(state.step) == 8
  assert np.all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0], losses
  assert {'loss', 'loss_bicubic', 'grad_norm'} <= set(metrics)
  pred = jax.device_get(jax.jit(method.predict_step)(state, batch))
  chex.assert_shape([pred['depth'], pred['bicubic']], [(2, 16, 16)] * 2)
  example = {k: v[0] for k, v in batch.items()}
  panel = method.render(example, {k: v[0] for k, v in pred.items()},
                        np.zeros((16, 16, 3), np.uint8))
  assert panel.dtype == np.uint8 and panel.ndim == 3


# -- configs ----------------------------------------------------------------------------------

def test_variant_specifics():
  nyu = load_config('configs/ctkt.py:nyuv2')
  assert (nyu.model.num_stages, nyu.model.features, nyu.model.feat0) == (7, 64, 256)
  assert (nyu.evaluation.border, nyu.evaluation.units_scale) == (6, 100.0)
  mb = load_config('configs/ctkt.py:middlebury')
  assert mb.dataset.augment.dsr_key == 'disparity' and mb.evaluation.border == 0
  assert mb.dataset.augment.dsr_protocol == 'middlebury' and not mb.evaluation.denormalize
  tof = load_config('configs/ctkt.py:tofmark')
  assert tof.num_train_steps == 0 and tof.model.lr_up == 'jax'  # evaluation only
  assert not nyu.model.residual  # D-DBPN as trained (DBPN main.py has no --residual)
  with pytest.raises(ValueError, match='at most one'):
    load_config('configs/ctkt.py:x4,x8')


@pytest.mark.parametrize('path,value', [
    ('model.name', 'dbpn2'),
    ('model.num_stages', 0),
    ('model.features', 0),
    ('model.lr_up', 'torch'),
    ('model.input_scale', 0.0),
    ('loss.kind', 'huber'),
    ('dataset.augment.recipe', 'deeplab'),
    ('dataset.augment.dsr_scale', 3),
    ('dataset.augment.dsr_protocol', 'kitti'),
    ('dataset.augment.crop_size', (14, 14)),
    ('evaluation.border', -1),
    ('evaluation.units_scale', 0.0),
])
def test_bad_field_is_named(path, value):
  c = smoke()
  set_field(c, path, value)
  with pytest.raises(config_checks.ConfigError, match=r'config\.' + path.replace('.', r'\.')):
    config_checks.validate(c)


def test_denormalize_needs_the_nyu_protocol():
  c = smoke()
  c.dataset.augment.dsr_protocol = 'middlebury'
  with pytest.raises(config_checks.ConfigError, match=r'config\.evaluation\.denormalize'):
    config_checks.validate(c)
