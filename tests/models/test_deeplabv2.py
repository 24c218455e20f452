"""Tests for jaxseg.models.deeplabv2 (DeepLabV2, multi-level variant, MultiScaleInput)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.models.deeplabv2 import DeepLabV2, MultiScaleInput, scaled_size
from jaxseg.nn import resize_bilinear
from jaxseg.nn.resize import resize_by_scale

TINY = dict(depth=14, width=8, aspp_rates=(1, 2, 3, 4))


def normal(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def np_variables(model, x, seed=0):
  """Random variables from NumPy (no JAX RNG compile): He-scaled kernels, non-trivial BN."""
  abstract_vars = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = path[-1].key
    if name == 'kernel':
      v = rng.normal(0, np.sqrt(2 / np.prod(s.shape[:-1])), s.shape)
    elif name in ('scale', 'var'):
      v = rng.uniform(0.5, 1.5, s.shape)
    else:
      v = 0.1 * rng.normal(size=s.shape)
    return jnp.asarray(v, jnp.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract_vars)


def abstract(model, shape, **apply_kw):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, **apply_kw), variables, x)
  return variables, out


def test_full_size_shapes_and_names():
  model = DeepLabV2(num_classes=21, multi_level=True)
  variables, out = abstract(model, (1, 321, 321, 3))
  params = variables['params']
  assert set(params) == {'backbone', 'aspp', 'aspp_aux'}
  assert set(params['aspp']) == {f'branch_{i}' for i in range(4)}
  assert params['aspp']['branch_3']['kernel'].shape == (3, 3, 2048, 21)
  assert params['aspp_aux']['branch_0']['kernel'].shape == (3, 3, 1024, 21)
  assert 'layer3_22' in params['backbone'] and 'layer3_23' not in params['backbone']
  assert out['logits'].shape == (1, 41, 41, 21)
  assert out['aux_logits'].shape == (1, 41, 41, 21)


def test_single_level_names():
  variables, out = abstract(DeepLabV2(num_classes=5, **TINY), (1, 33, 33, 3))
  assert set(variables['params']) == {'backbone', 'aspp'}
  assert set(out) == {'logits'} and out['logits'].shape == (1, 5, 5, 5)
  assert variables['params']['aspp']['branch_0']['kernel'].shape == (3, 3, 256, 5)


def test_even_size_ceil_rules():
  _, out = abstract(DeepLabV2(num_classes=19, **TINY), (1, 64, 96, 3))
  assert out['logits'].shape == (1, 9, 13, 19)  # 64 -> 32 -> 17 -> 9; 96 -> 48 -> 25 -> 13


def test_tiny_forward_frozen_bn_multi_level():
  model = DeepLabV2(num_classes=3, multi_level=True, aspp_branches=2, **TINY)
  x = normal((2, 33, 33, 3), 0)
  variables = np_variables(model, x)
  assert set(variables['params']['aspp']) == {f'branch_{i}' for i in range(4)}
  assert variables['params']['aspp_aux']['branch_0']['kernel'].shape == (3, 3, 128, 3)
  # frozen BN: training forward needs no mutable batch_stats and equals the eval forward.
  out, eval_out = jax.jit(lambda v, x: (model.apply(v, x, train=True),
                                        model.apply(v, x, train=False)))(variables, x)
  chex.assert_shape([out['logits'], out['aux_logits']], (2, 5, 5, 3))
  chex.assert_trees_all_close(out, eval_out)
  chex.assert_tree_all_finite(out)


def test_scaled_size():
  assert [scaled_size(321, s) for s in (1.0, 0.75, 0.5)] == [321, 240, 160]
  assert [scaled_size(65, s) for s in (1.0, 0.75, 0.5)] == [65, 48, 32]
  assert [scaled_size(321, s, 'caffe_interp') for s in (1.0, 0.75, 0.5)] == [321, 241, 161]


@pytest.fixture(scope='module')
def msc_run():
  """One compile: MSC outputs (each resize rule) plus the base network alone on the 1.0x image and
  on the 0.5x image resized by PyTorch scale_factor semantics (deeplab-pytorch MSC, the default)."""
  base = DeepLabV2(num_classes=4, **TINY)
  model = MultiScaleInput(base=base)
  x = normal((1, 65, 65, 3), 0)
  variables = np_variables(model, x)

  @jax.jit
  def run(variables, x):
    sub = {c: tree['base'] for c, tree in variables.items()}
    x_half = resize_by_scale(x, 0.5, 'pytorch_scale_factor')
    out = model.apply(variables, x, train=False)
    up = jnp.stack([resize_bilinear(l, (9, 9), align_corners=False) for l in out['scale_logits']])
    rules = {r: MultiScaleInput(base=base, resize_rule=r).apply(variables, x, train=False)
             for r in ('size', 'caffe_interp')}
    size_half = base.apply(sub, resize_bilinear(x, (32, 32), align_corners=False), train=False)
    caffe_half = base.apply(sub, resize_by_scale(x, 0.5, 'caffe_interp'), train=False)
    return (out, up, base.apply(sub, x, train=False), base.apply(sub, x_half, train=False),
            rules, size_half, caffe_half)

  return base, model, x, variables, jax.device_get(run(variables, x))


def test_msc_fused_is_max_of_upsampled(msc_run):
  _, model, x, variables, (out, up, *_) = msc_run
  sl = out['scale_logits']
  assert isinstance(sl, tuple) and len(sl) == 3
  assert [l.shape for l in sl] == [(1, 9, 9, 4), (1, 7, 7, 4), (1, 5, 5, 4)]
  np.testing.assert_array_equal(up[0], sl[0])  # scale 1.0 is not resized
  np.testing.assert_allclose(out['logits'], up.max(axis=0), atol=1e-6)
  # more than one scale wins somewhere, so the max is not trivially one scale.
  assert len(np.unique(up.argmax(axis=0))) > 1
  train_out = jax.eval_shape(lambda v, x: model.apply(v, x, train=True), variables, x)
  chex.assert_trees_all_equal_shapes_and_dtypes(train_out, out)  # same dict in training


def test_msc_shared_weights(msc_run):
  base, _, x, variables, (out, _, full, half, *_) = msc_run
  assert set(variables['params']) == {'base'}
  base_vars, _ = abstract(base, x.shape)
  chex.assert_trees_all_equal_shapes(variables['params']['base'], base_vars['params'])
  chex.assert_trees_all_close(out['scale_logits'][0], full['logits'], atol=1e-5)
  chex.assert_trees_all_close(out['scale_logits'][2], half['logits'], atol=1e-5)


def test_msc_resize_rules(msc_run):
  """'size' (the pre-issue-12 rule) and 'caffe_interp' resize each scale as documented, and the
  three rules give different fused logits at 65 px (65 * 0.75 and 65 * 0.5 are not whole)."""
  _, _, _, _, (out, _, _, half, rules, size_half, caffe_half) = msc_run
  chex.assert_trees_all_close(rules['size']['scale_logits'][2], size_half['logits'], atol=1e-5)
  caffe = rules['caffe_interp']
  assert [l.shape[1:3] for l in caffe['scale_logits']] == [(9, 9), (7, 7), (5, 5)]  # 65, 49, 33
  chex.assert_trees_all_close(caffe['scale_logits'][2], caffe_half['logits'], atol=1e-5)
  up = np.stack([np.asarray(resize_bilinear(jnp.asarray(l), (9, 9), align_corners=True))
                 for l in caffe['scale_logits']])
  np.testing.assert_allclose(caffe['logits'], up.max(axis=0), atol=1e-5)  # Interp: corners
  for a, b in [(out, rules['size']), (out, caffe), (rules['size'], caffe)]:
    assert np.abs(a['logits'] - b['logits']).max() > 1e-2
  assert np.abs(half['logits'] - size_half['logits']).max() > 1e-2


def test_msc_scales_and_align_corners():
  base = DeepLabV2(num_classes=2, **TINY)
  model = MultiScaleInput(base=base, scales=(1.0, 0.5), align_corners=True)
  _, out = abstract(model, (1, 33, 49, 3))
  assert out['logits'].shape == (1, 5, 7, 2)
  assert [l.shape for l in out['scale_logits']] == [(1, 5, 7, 2), (1, 3, 4, 2)]
  with pytest.raises(ValueError):
    abstract(MultiScaleInput(base=base, scales=(0.5, 0.75)), (1, 33, 33, 3))
  with pytest.raises(ValueError, match='always aligns corners'):
    abstract(MultiScaleInput(base=base, resize_rule='caffe_interp', align_corners=False),
             (1, 33, 33, 3))
