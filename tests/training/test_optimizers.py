"""Parameter groups, PyTorch-style SGD, poly schedule and the multi-tree (GAN) optimizer."""
import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxseg.methods.deeplabv2.param_groups import deeplab_param_groups
from jaxseg.training import optimizers as opt


def fake_deeplab_params():
  z = lambda *s: jnp.zeros(s, jnp.float32)
  bn = lambda: {'scale': z(2), 'bias': z(2)}
  return {
      'backbone': {
          'stem': {'conv1': {'kernel': z(1, 1, 1, 2)}, 'bn1': bn()},
          'layer1_0': {'conv1': {'kernel': z(1, 1, 2, 2)}, 'bn1': bn(),
                       'downsample_conv': {'kernel': z(1, 1, 2, 2)}, 'downsample_bn': bn()},
      },
      'aspp': {'branch_0': {'kernel': z(1, 1, 2, 3), 'bias': z(3)},
               'branch_1': {'kernel': z(1, 1, 2, 3), 'bias': z(3)}},
  }


def test_deeplab_group_labels():
  labels = opt.param_group_labels(fake_deeplab_params(), deeplab_param_groups(freeze_bn=True))
  bb = labels['backbone']
  assert bb['stem'] == {'conv1': {'kernel': 'default'},
                        'bn1': {'scale': 'batchnorm', 'bias': 'batchnorm'}}
  assert bb['layer1_0']['downsample_bn'] == {'scale': 'batchnorm', 'bias': 'batchnorm'}
  assert bb['layer1_0']['downsample_conv'] == {'kernel': 'default'}
  assert labels['aspp']['branch_1'] == {'kernel': 'head_weight', 'bias': 'head_bias'}
  # MSC wrapper ('base/' prefix) and the AdaptSegNet auxiliary head ('aspp_aux').
  wrapped = {'base': {**fake_deeplab_params(), 'aspp_aux': {'branch_0': {'kernel': 0, 'bias': 0}}}}
  labels = opt.param_group_labels(wrapped, deeplab_param_groups(freeze_bn=True))['base']
  assert labels['aspp_aux']['branch_0'] == {'kernel': 'head_weight', 'bias': 'head_bias'}
  assert labels['backbone']['stem']['bn1']['bias'] == 'batchnorm'
  adapt = opt.param_group_labels(wrapped, opt.head_param_groups('aspp', 10.0, freeze_bn=True))
  assert adapt['base']['aspp']['branch_0'] == {'kernel': 'head_weight', 'bias': 'head_weight'}
  # First match wins; unmatched -> 'default'.
  groups = [{'name': 'a', 'pattern': 'kernel$'}, {'name': 'b', 'pattern': 'aspp/'}]
  labels = opt.param_group_labels(fake_deeplab_params(), groups)
  assert labels['aspp']['branch_0'] == {'kernel': 'a', 'bias': 'b'}
  assert labels['backbone']['stem']['bn1']['scale'] == 'default'


def test_poly_schedule_values():
  s = opt.poly_schedule(1.0, 10, power=0.9)
  chex.assert_trees_all_close([s(0), s(5), s(10), s(20)], [1.0, 0.5**0.9, 0.0, 0.0])
  s = opt.poly_schedule(2.0, 4, power=1.0, end_lr=1.0)
  chex.assert_trees_all_close([s(0), s(1), s(4)], [2.0, 1.75, 1.0])
  s = opt.poly_schedule(1.0, 100, power=1.0, warmup_steps=10, warmup_ratio=0.1)
  chex.assert_trees_all_close([s(0), s(5), s(10)], [0.1, 0.95 * 0.55, 0.9])
  s = opt.poly_schedule(1.0, 100, power=1.0, update_every=10)
  chex.assert_trees_all_close([s(9), s(10), s(19)], [1.0, 0.9, 0.9])


def test_sgd_pytorch_is_l2_before_momentum():
  p, g = jnp.array([1.0, -2.0]), jnp.array([0.5, 0.25])
  tx = opt.sgd_pytorch(0.1, momentum=0.9, weight_decay=0.01)
  state = tx.init(p)
  v = np.zeros(2)
  pn = np.asarray(p, np.float64)
  for _ in range(2):
    u, state = tx.update(g, state, p)
    p = optax.apply_updates(p, u)
    v = 0.9 * v + np.asarray(g) + 0.01 * pn
    pn = pn - 0.1 * v
  chex.assert_trees_all_close(p, pn.astype(np.float32), rtol=1e-6)


def deeplab_cfg():
  return ml_collections.ConfigDict({
      'name': 'sgd', 'learning_rate': 0.1, 'momentum': 0.9, 'weight_decay': 0.01,
      'nesterov': False, 'schedule': 'poly', 'power': 0.9,
      'param_groups': deeplab_param_groups(freeze_bn=True)})


def test_deeplab_sgd_two_steps_match_pytorch_recipe():
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32),
                        fake_deeplab_params())
  grads = [jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
           for _ in range(2)]
  tx = opt.make_optimizer(deeplab_cfg(), params, total_steps=4)
  state = tx.init(params)
  new = params
  for g in grads:
    u, state = tx.update(g, state, new)
    new = optax.apply_updates(new, u)

  # Hand-written PyTorch SGD: v = m * v + g + wd * p; p -= lr * mult * v.
  def torch_sgd(path, mult, wd):
    p = np.asarray(path(params), np.float64)
    v = np.zeros_like(p)
    for t, g in enumerate(grads):
      lr = 0.1 * (1 - t / 4) ** 0.9
      v = 0.9 * v + np.asarray(path(g)) + wd * p
      p = p - lr * mult * v
    return p

  cases = [(lambda t: t['backbone']['layer1_0']['conv1']['kernel'], 1.0, 0.01),
           (lambda t: t['backbone']['stem']['conv1']['kernel'], 1.0, 0.01),
           (lambda t: t['aspp']['branch_0']['kernel'], 10.0, 0.01),
           (lambda t: t['aspp']['branch_1']['bias'], 20.0, 0.0)]
  for path, mult, wd in cases:
    chex.assert_trees_all_close(path(new), torch_sgd(path, mult, wd).astype(np.float32),
                                rtol=1e-5, atol=1e-6)
  # Frozen BN: unchanged despite gradients and weight decay.
  chex.assert_trees_all_equal(new['backbone']['stem']['bn1'], params['backbone']['stem']['bn1'])
  chex.assert_trees_all_equal(new['backbone']['layer1_0']['downsample_bn'],
                              params['backbone']['layer1_0']['downsample_bn'])


def test_make_optimizer_rejects_bad_groups():
  def cfg(groups):
    return dict(deeplab_cfg().to_dict(), param_groups=groups)
  with pytest.raises(ValueError, match=r"param groups \['head'\] match no parameter"):
    opt.make_optimizer(cfg([{'name': 'head', 'pattern': 'classifier/'}]), fake_deeplab_params(), 10)
  opt.make_optimizer(cfg([{'name': 'head', 'pattern': 'classifier/', 'optional': True}]),
                     fake_deeplab_params(), 10)
  with pytest.raises(ValueError, match=r"duplicate param group names: \['a'\]"):
    opt.make_optimizer(cfg([{'name': 'a', 'pattern': 'x'}, {'name': 'a', 'pattern': 'y'}]),
                       fake_deeplab_params(), 10)


def test_multi_tree_each_tree_moves_as_its_own_chain():
  rng = np.random.default_rng(1)
  rand = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)
  params = {'generator': {'conv': {'kernel': rand(2, 3), 'bias': rand(3)}},
            'discriminator': {'d1': {'kernel': rand(3, 2)}, 'd2': {'kernel': rand(2)}}}
  grads = [jax.tree.map(lambda x: rand(*x.shape), params) for _ in range(2)]
  make_g = lambda: opt.sgd_pytorch(optax.constant_schedule(0.1), 0.9, weight_decay=5e-4)
  make_d = lambda: optax.adam(1e-3, b1=0.9, b2=0.99)
  tx = opt.make_multi_tree_optimizer({'generator': make_g(), 'discriminator': make_d()})

  def run(tx, p, gs):
    state = tx.init(p)
    for g in gs:
      u, state = tx.update(g, state, p)
      p = optax.apply_updates(p, u)
    return p

  joint = run(tx, params, grads)
  for key, make in (('generator', make_g), ('discriminator', make_d)):
    alone = run(make(), params[key], [g[key] for g in grads])
    chex.assert_trees_all_close(joint[key], alone, rtol=1e-6, atol=1e-7)

  # A zero gradient on one tree (e.g. the discriminator during the generator update) leaves it
  # unchanged while the other tree moves.
  zero_d = [{**g, 'discriminator': jax.tree.map(jnp.zeros_like, g['discriminator'])}
            for g in grads]
  moved = run(tx, params, zero_d)
  chex.assert_trees_all_equal(moved['discriminator'], params['discriminator'])
  chex.assert_trees_all_close(moved['generator'], joint['generator'])

  with pytest.raises(KeyError):
    tx.init({**params, 'extra': {'w': rand(1)}})


def test_multi_tree_with_grouped_generator():
  """AdaptSegNet layout: grouped SGD generator + Adam discriminator in one transformation."""
  params = {'generator': fake_deeplab_params(), 'discriminator': {'k': jnp.ones(2)}}
  gen_tx = opt.make_optimizer(deeplab_cfg(), params['generator'], 10)
  tx = opt.make_multi_tree_optimizer(
      {'generator': gen_tx, 'discriminator': optax.adam(1e-4, b1=0.9, b2=0.99)})
  grads = jax.tree.map(jnp.ones_like, params)
  u, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  chex.assert_trees_all_close(u['generator']['aspp']['branch_0']['bias'], -2.0 * jnp.ones(3))
  chex.assert_trees_all_equal(u['generator']['backbone']['stem']['bn1']['scale'], jnp.zeros(2))
  chex.assert_trees_all_close(u['discriminator']['k'], -1e-4 * jnp.ones(2), rtol=1e-3)


def test_step_schedule_divides_at_the_boundaries():
  sched = opt.make_schedule({'learning_rate': 1e-3, 'schedule': 'step', 'boundaries': (3, 5),
                             'decay_factor': 0.1}, 10)
  got = [float(sched(i)) for i in range(7)]
  np.testing.assert_allclose(got, [1e-3] * 3 + [1e-4] * 2 + [1e-5] * 2, rtol=1e-6)
  with pytest.raises(ValueError, match='schedule'):
    opt.make_schedule({'learning_rate': 1.0, 'schedule': 'cosine'}, 10)
