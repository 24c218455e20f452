"""Tests for jaxseg.models.deeplabv2 (DeepLabV2, multi-level variant, MultiScaleInput)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.models.deeplabv2 import DeepLabV2, MultiScaleInput, scaled_size
from jaxseg.nn import resize_bilinear

TINY = dict(depth=14, width=8, aspp_rates=(1, 2, 3, 4))


def abstract(model, shape, **apply_kw):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, **apply_kw), variables, x)
  return variables, out


@pytest.mark.parametrize('multi_level', [False, True])
def test_full_size_shapes_and_names(multi_level):
  model = DeepLabV2(num_classes=21, multi_level=multi_level)
  variables, out = abstract(model, (1, 321, 321, 3))
  params = variables['params']
  assert set(params) == {'backbone', 'aspp'} | ({'aspp_aux'} if multi_level else set())
  assert set(params['aspp']) == {f'branch_{i}' for i in range(4)}
  assert params['aspp']['branch_3']['kernel'].shape == (3, 3, 2048, 21)
  assert 'layer3_22' in params['backbone'] and 'layer3_23' not in params['backbone']
  assert out['logits'].shape == (1, 41, 41, 21)
  if multi_level:
    assert params['aspp_aux']['branch_0']['kernel'].shape == (3, 3, 1024, 21)
    assert out['aux_logits'].shape == (1, 41, 41, 21)
  else:
    assert set(out) == {'logits'}


def test_even_size_ceil_rules():
  _, out = abstract(DeepLabV2(num_classes=19, **TINY), (1, 64, 96, 3))
  assert out['logits'].shape == (1, 9, 13, 19)  # 64 -> 32 -> 17 -> 9; 96 -> 48 -> 25 -> 13


def test_tiny_forward_frozen_bn_multi_level():
  model = DeepLabV2(num_classes=3, multi_level=True, aspp_branches=2, **TINY)
  x = jax.random.normal(jax.random.key(0), (2, 33, 33, 3))
  variables = model.init(jax.random.key(1), x, train=False)
  assert set(variables['params']['aspp']) == {f'branch_{i}' for i in range(4)}
  assert variables['params']['aspp_aux']['branch_0']['kernel'].shape == (3, 3, 128, 3)
  # frozen BN: training forward needs no mutable batch_stats and equals the eval forward.
  out = model.apply(variables, x, train=True)
  chex.assert_shape([out['logits'], out['aux_logits']], (2, 5, 5, 3))
  chex.assert_trees_all_close(out, model.apply(variables, x, train=False))
  chex.assert_tree_all_finite(out)


def test_scaled_size():
  assert [scaled_size(321, s) for s in (1.0, 0.75, 0.5)] == [321, 240, 160]
  assert [scaled_size(65, s) for s in (1.0, 0.75, 0.5)] == [65, 48, 32]


@pytest.fixture(scope='module')
def msc_setup():
  base = DeepLabV2(num_classes=4, **TINY)
  model = MultiScaleInput(base=base)
  x = jax.random.normal(jax.random.key(0), (1, 65, 65, 3))
  variables = model.init(jax.random.key(1), x, train=False)
  return base, model, x, variables


def test_msc_fused_is_max_of_upsampled(msc_setup):
  _, model, x, variables = msc_setup
  out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
  sl = out['scale_logits']
  assert isinstance(sl, tuple) and len(sl) == 3
  assert [l.shape for l in sl] == [(1, 9, 9, 4), (1, 7, 7, 4), (1, 5, 5, 4)]
  up = [resize_bilinear(l, (9, 9), align_corners=False) for l in sl]
  want = jnp.maximum(jnp.maximum(up[0], up[1]), up[2])
  chex.assert_trees_all_close(out['logits'], want, atol=1e-6)
  # every scale wins somewhere, so the max is not trivially one scale.
  winner = jnp.argmax(jnp.stack(up), axis=0)
  assert len(np.unique(np.asarray(winner))) > 1
  train_out = model.apply(variables, x, train=True)  # frozen BN: same dict in training
  chex.assert_trees_all_close(train_out, out, atol=1e-5)


def test_msc_shared_weights(msc_setup):
  base, model, x, variables = msc_setup
  assert set(variables['params']) == {'base'}
  base_vars = base.init(jax.random.key(1), x, train=False)
  chex.assert_trees_all_equal_shapes(variables['params']['base'], base_vars['params'])
  sub = jax.tree.map(lambda v: v['base'], dict(variables))
  out = model.apply(variables, x, train=False)
  chex.assert_trees_all_close(out['scale_logits'][0], base.apply(sub, x, train=False)['logits'],
                              atol=1e-5)
  x_half = resize_bilinear(x, (32, 32), align_corners=False)
  chex.assert_trees_all_close(out['scale_logits'][2],
                              base.apply(sub, x_half, train=False)['logits'], atol=1e-5)


def test_msc_scales_and_align_corners():
  base = DeepLabV2(num_classes=2, **TINY)
  model = MultiScaleInput(base=base, scales=(1.0, 0.5), align_corners=True)
  _, out = abstract(model, (1, 33, 49, 3))
  assert out['logits'].shape == (1, 5, 7, 2)
  assert [l.shape for l in out['scale_logits']] == [(1, 5, 7, 2), (1, 3, 4, 2)]
  with pytest.raises(ValueError):
    abstract(MultiScaleInput(base=base, scales=(0.5, 0.75)), (1, 33, 33, 3))
