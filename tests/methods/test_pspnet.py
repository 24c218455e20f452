"""PSPNet method on a tiny model (ResNet-14 width 8, heads 16 / 8, 33x33, 7 classes): output
shapes, the 0.4 auxiliary loss in training only, dropout in training only (a per-step key),
loss falling, BN synchronised over an axis == global-batch BN, the config variants."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import np_variables
from jaxseg.config_files import load_config
from jaxseg.configlib import ConfigError
from jaxseg.data import sources
from jaxseg.methods import build_method
from jaxseg.runner import config_checks
from jaxseg.training.state import TrainState

B, S = 4, 33
pytestmark = pytest.mark.usefixtures('fast_compile')


def tiny_config(*flags, **model):
  c = load_config('configs/pspnet.py:' + ','.join(('smoke',) + flags))
  c.model.update(model)
  c.optimizer.update(weight_decay=0.0)
  c.dataset.augment.crop_size = (S, S)
  return c


def make_method(*flags, axis_name=None, **model):
  c = tiny_config(*flags, **model)
  return build_method(c, sources.make_source(c.dataset, 'train').meta, axis_name=axis_name)


@pytest.fixture(scope='module')
def batch():
  """Training crops of the synthetic scenes (33x33) with labels and an eval mask."""
  method = make_method()
  src = sources.make_source(method.config.dataset, 'train')
  tf = method.train_transform()
  examples = [tf(src[i], np.random.default_rng(i)) for i in range(B)]
  out = {k: np.stack([e[k] for e in examples]) for k in ('image', 'label')}
  out['mask'] = np.ones((B,), bool)
  return out


def np_state(method, batch, seed=0):
  v = np_variables(method.model, jnp.asarray(batch['image'][:1]), seed=seed, train=False)
  return TrainState.create(v['params'], v['batch_stats'], method._ensure_tx(v['params']),  # pylint: disable=protected-access
                           jax.random.key(1))


@pytest.fixture(scope='module')
def method_and_state(batch):
  method = make_method()
  return method, np_state(method, batch)


def test_shapes_and_aux_only_in_training(method_and_state, batch):
  method, state = method_and_state
  variables = {'params': state.params, 'batch_stats': state.batch_stats}
  x = jnp.asarray(batch['image'])
  out = jax.eval_shape(lambda v: method.model.apply(v, x, train=False), variables)
  assert set(out) == {'logits'}
  chex.assert_shape(out['logits'], (B, 5, 5, 7))  # (33 - 1) / 8 + 1
  out, _ = jax.eval_shape(lambda p, k: method.apply_train(p, state.batch_stats, x, k),
                          state.params, jax.random.key(0))
  chex.assert_shape([out['logits'], out['aux_logits']], (B, 5, 5, 7))
  assert state.params['cls']['block']['conv']['kernel'].shape == (3, 3, 2 * 256, 16)
  assert state.params['aux']['block']['conv']['kernel'].shape == (3, 3, 128, 8)  # on layer3
  no_ppm = make_method('no_ppm')
  shapes = jax.eval_shape(lambda: no_ppm.model.init(jax.random.key(0), x, train=False))
  assert 'ppm' not in shapes['params']
  assert shapes['params']['cls']['block']['conv']['kernel'].shape == (3, 3, 256, 16)


@pytest.fixture(scope='module')
def train_step(method_and_state):
  return jax.jit(method_and_state[0].train_step)


def test_aux_loss_weight_in_training_only(method_and_state, batch, train_step):
  """Training: loss = CE(main) + 0.4 CE(aux) (the two differ); evaluation does not depend on the
  auxiliary head (changing its weights changes no confusion count)."""
  method, state = method_and_state
  assert method.config.loss.aux_weight == 0.4
  metrics = train_step(state, batch)[1]
  np.testing.assert_allclose(metrics['loss'], metrics['ce'] + 0.4 * metrics['ce_aux'], rtol=1e-6)
  assert abs(float(metrics['ce_aux']) - float(metrics['ce'])) > 1e-3

  # Evaluation runs the model with train=False and no dropout key (a Dropout that still drew
  # would fail for the missing 'dropout' rng).
  eval_fn = jax.jit(method.eval_step)
  cm = eval_fn(state, batch)['confusion']
  params = dict(state.params, aux=jax.tree_util.tree_map(lambda a: a * 3.0 + 1.0,
                                                         state.params['aux']))
  np.testing.assert_array_equal(eval_fn(state.replace(params=params), batch)['confusion'], cm)
  assert int(np.sum(cm)) == int(np.sum(batch['label'] != 255))


def test_dropout_in_training_with_a_per_step_key(method_and_state, batch, train_step):
  """The train step is pure in the state, and its dropout key (state.rng folded with the step)
  changes with the step: the same state at another step gives another loss (the loss before
  the update depends on the step only through that key)."""
  _, state = method_and_state
  loss0 = float(train_step(state, batch)[1]['loss'])
  assert float(train_step(state, batch)[1]['loss']) == loss0
  assert float(train_step(state.replace(step=state.step + 1), batch)[1]['loss']) != loss0
  other_rng = state.replace(rng=jax.random.key(2))
  assert float(train_step(other_rng, batch)[1]['loss']) != loss0


def test_loss_falls_and_syncbn_over_an_axis_equals_global_batch_bn(batch):
  """SGD steps on one batch lower the loss; the same steps with the batch split in two shards
  and BN / losses / gradients reduced over a vmap axis (the pmap code path) give the same losses,
  parameters and running statistics (dropout off: its masks depend on the shard)."""
  method = make_method(dropout=0.0)
  sharded = make_method(axis_name='d', dropout=0.0)
  for m in (method, sharded):
    m.config.optimizer.learning_rate = 0.02
  state = np_state(method, batch)
  step = jax.jit(method.train_step)
  pstep = jax.jit(jax.vmap(sharded.train_step, in_axes=(None, 0), out_axes=(None, None),
                           axis_name='d'))
  sbatch = {k: v.reshape((2, v.shape[0] // 2) + v.shape[1:]) for k, v in batch.items()}
  s1, s2, losses, plosses = state, state, [], []
  for _ in range(4):
    s1, m1 = step(s1, batch)
    s2, m2 = pstep(s2, sbatch)
    losses.append(float(m1['loss']))
    plosses.append(float(m2['loss']))
  assert losses[-1] < 0.85 * losses[0], losses
  np.testing.assert_allclose(plosses, losses, rtol=2e-4)
  for a, b in zip(jax.tree_util.tree_leaves((s1.params, s1.batch_stats)),
                  jax.tree_util.tree_leaves((s2.params, s2.batch_stats))):
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)


@pytest.mark.parametrize('variant', ['', 'smoke', 'no_ppm', 'no_aux', 'no_ppm,no_aux',
                                     'cityscapes', 'ade20k', 'voc', 'voc,no_aux',
                                     'smoke,no_ppm,no_aux'])
def test_variants_validate(variant):
  c = load_config(f'configs/pspnet.py:{variant}')
  config_checks.validate(c)
  assert c.model.use_ppm == ('no_ppm' not in variant)
  assert (c.loss.aux_weight, c.model.aux) == ((0.0, False) if 'no_aux' in variant else
                                              (0.4, True))
  if variant in ('cityscapes', 'ade20k', 'voc'):
    assert c.batch_size == 16 and c.optimizer.learning_rate == 0.01
    assert c.optimizer.weight_decay == 1e-4 and c.optimizer.momentum == 0.9
    assert c.optimizer.param_groups.head.lr_mult == 10.0
    assert c.dataset.augment.recipe == 'pspnet'
    assert tuple(c.dataset.augment.crop_size) == ((713, 713) if variant == 'cityscapes' else
                                                  (473, 473))
    assert (c.model.depth, c.model.width) == (101, 64)


def test_bad_configs_name_the_field():
  with pytest.raises(ConfigError, match='unknown variant'):
    load_config('configs/pspnet.py:smoke,nope')
  with pytest.raises(ConfigError, match='at most one dataset'):
    load_config('configs/pspnet.py:voc,ade20k')
  c = load_config('configs/pspnet.py:smoke')
  c.model.aux = False
  with pytest.raises(ConfigError, match='loss.aux_weight'):
    config_checks.validate(c)
  c = load_config('configs/pspnet.py:smoke')
  c.model.bins = (1, 2, 2)
  with pytest.raises(ConfigError, match='model.bins'):
    config_checks.validate(c)
