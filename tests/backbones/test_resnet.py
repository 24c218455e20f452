"""Tests for jaxseg.backbones.resnet (tiny: depth 14, width 8; full sizes only via eval_shape)."""
import functools
import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxseg.backbones import ResNet
from jaxseg.backbones.resnet import STAGE_BLOCKS, block_dilations
from jaxseg.nn import BatchNorm, Conv2D


def conv_out(n, k, s, p, d=1):
  return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pool_out(n, ceil):
  if not ceil:
    return conv_out(n, 3, 2, 1)
  out = math.ceil((n + 2 - 3) / 2) + 1
  return out - 1 if (out - 1) * 2 >= n + 1 else out


def expected_sizes(n, output_stride, ceil):
  stem = pool_out(conv_out(n, 7, 2, 3), ceil)
  l2 = conv_out(stem, 1, 2, 0)
  l3 = conv_out(l2, 1, 2, 0) if output_stride >= 16 else l2
  l4 = conv_out(l3, 1, 2, 0) if output_stride == 32 else l3
  return {'stem': stem, 'layer1': stem, 'layer2': l2, 'layer3': l3, 'layer4': l4}


def init_shapes(model, size=33):
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


@functools.lru_cache(maxsize=None)
def tiny_variables():
  """Variable shapes of the tiny model (independent of layout, output stride and input size)."""
  return init_shapes(tiny())


def shapes(model, size, method_kwargs=None, variables=None):
  """Abstract init + apply: returns (param shapes, output shapes) without computing anything."""
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  if variables is None:
    variables = init_shapes(model, size)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, **(method_kwargs or {})),
                       variables, x)
  return variables, out


def np_variables(model, x, seed=0):
  """Random variables from NumPy (no JAX RNG compile): He-scaled kernels, non-trivial BN."""
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = path[-1].key
    if name == 'kernel':
      v = rng.normal(0, np.sqrt(2 / np.prod(s.shape[:-1])), s.shape)
    elif name == 'scale':
      v = 1 + 0.1 * rng.normal(size=s.shape)
    elif name == 'var':
      v = rng.uniform(0.5, 1.5, s.shape)
    else:
      v = 0.1 * rng.normal(size=s.shape)
    return jnp.asarray(v, jnp.float32)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def tiny(**kw):
  kw = {'depth': 14, 'width': 8, **kw}
  return ResNet(**kw)


def test_full_size_caffe_321_to_41():
  model = ResNet(depth=101, layout='caffe', output_stride=8, bn_mode='frozen')
  variables, out = shapes(model, 321)
  assert out['stem'].shape == (1, 81, 81, 64)
  assert out['layer1'].shape == (1, 81, 81, 256)
  assert out['layer2'].shape == (1, 41, 41, 512)
  assert out['layer3'].shape == (1, 41, 41, 1024)
  assert out['layer4'].shape == (1, 41, 41, 2048)
  blocks = [k for k in variables['params'] if k.startswith('layer')]
  assert len(blocks) == sum(STAGE_BLOCKS[101]) == 33
  n_params = sum(np.prod(p.shape) for p in jax.tree.leaves(variables['params']))
  # torchvision resnet101 has 44.55M params incl. 2.05M fc; BN counted as scale+bias.
  assert n_params == 44_549_160 - 2_049_000


@pytest.mark.parametrize('size', [64, 65])
@pytest.mark.parametrize('output_stride', [8, 16, 32])
@pytest.mark.parametrize('layout', ['caffe', 'pytorch'])
@pytest.mark.parametrize('ceil', [True, False])
def test_feature_shapes(size, output_stride, layout, ceil):
  model = tiny(layout=layout, output_stride=output_stride, pool_ceil_mode=ceil)
  _, out = shapes(model, size, variables=tiny_variables())
  want = expected_sizes(size, output_stride, ceil)
  channels = {'stem': 8, 'layer1': 32, 'layer2': 64, 'layer3': 128, 'layer4': 256}
  assert set(out) == set(want)
  for k, n in want.items():
    assert out[k].shape == (1, n, n, channels[k]), k


def test_ceil_pooling_even_size():
  _, ceil = shapes(tiny(pool_ceil_mode=True), 64, variables=tiny_variables())
  _, floor = shapes(tiny(pool_ceil_mode=False), 64, variables=tiny_variables())
  assert ceil['layer1'].shape[1] == 17 and floor['layer1'].shape[1] == 16
  assert ceil['layer4'].shape[1] == 9 and floor['layer4'].shape[1] == 8


@pytest.mark.parametrize('layout,strided', [('caffe', 'conv1'), ('pytorch', 'conv2')])
def test_stride_placement(layout, strided):
  model = tiny(layout=layout, output_stride=32)
  only_convs = lambda mdl, _: isinstance(mdl, Conv2D)
  _, (_, state) = shapes(model, 33, variables=tiny_variables(), method_kwargs=dict(
      capture_intermediates=only_convs, mutable=['intermediates']))
  inter = state['intermediates']
  for k in (2, 3, 4):
    block = inter[f'layer{k}_0']
    size = lambda name: block[name]['__call__'][0].shape[1]
    n_in = 9 if k == 2 else (5 if k == 3 else 3)
    n_out = (n_in + 1) // 2
    assert size(strided) == n_out
    assert size('conv1') == (n_out if layout == 'caffe' else n_in)
    assert size('conv2') == n_out and size('conv3') == n_out
    assert size('downsample_conv') == n_out


@pytest.mark.parametrize('contract', [False, True])
def test_dilations_actually_used(contract):
  """Every conv's output equals a manual lax conv with the expected stride/dilation/padding."""
  model = tiny(output_stride=8, contract_dilation=contract, bn_mode='frozen')
  x = jnp.asarray(np.random.default_rng(1).normal(size=(1, 33, 33, 3)), jnp.float32)
  variables = np_variables(model, x)
  first = {'layer1_0': 1, 'layer2_0': 1, 'layer3_0': 1 if contract else 2,
           'layer4_0': 2 if contract else 4}
  stride = {'layer1_0': 1, 'layer2_0': 2, 'layer3_0': 1, 'layer4_0': 1}
  paths = []

  def expected(path):
    if path == ('conv1',):
      return 2, 1, 3
    block, name = path
    d = first[block] if name == 'conv2' else 1
    s = stride[block] if name in ('conv1', 'downsample_conv') else 1
    return s, d, (d if name == 'conv2' else 0)

  @jax.jit
  def run(variables, x):
    errors = []

    def interceptor(next_fun, args, kwargs, context):
      y = next_fun(*args, **kwargs)
      m = context.module
      if isinstance(m, Conv2D) and context.method_name == '__call__':
        path = tuple(m.path)
        s, d, p = expected(path)
        want = lax.conv_general_dilated(
            args[0], m.variables['params']['kernel'], (s, s), ((p, p), (p, p)),
            rhs_dilation=(d, d), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
        paths.append(path)
        errors.append(jnp.max(jnp.abs(y - want)) if y.shape == want.shape else jnp.inf)
      return y

    with nn.intercept_methods(interceptor):
      out = model.apply(variables, x, train=False)
    return jnp.stack(errors), out['layer4']

  errors, out = run(variables, x)
  assert len(set(paths)) == len(paths) == 1 + 4 * 4
  assert float(jnp.max(errors)) < 1e-4, dict(zip(paths, errors))
  assert float(jnp.std(out)) > 1e-3  # non-degenerate activations reached layer4


def test_block_dilations_depth50():
  """All blocks of a dilated stage use the full dilation unless contract_dilation (first halved)."""
  assert block_dilations(6, 2, False) == (2,) * 6
  assert block_dilations(6, 2, True) == (1,) + (2,) * 5
  assert block_dilations(3, 4, True) == (2, 4, 4)
  assert block_dilations(3, 1, True) == (1, 1, 1)
  for contract in (False, True):
    model = ResNet(depth=50, width=8, output_stride=16, contract_dilation=contract)
    dil = {}

    def interceptor(next_fun, args, kwargs, context):
      m = context.module
      if isinstance(m, Conv2D) and m.name == 'conv2' and (m.parent.name or '').startswith('layer'):
        dil[m.parent.name] = (m.dilation, m.strides)
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
      init_shapes(model)
    assert dil['layer3_5'] == (1, 1) and dil['layer3_0'] == (1, 1)
    assert dil['layer4_0'] == ((1 if contract else 2), 1)
    assert dil['layer4_1'] == (2, 1) and dil['layer4_2'] == (2, 1)
    assert len(dil) == 16


def test_param_names_and_no_bias():
  variables = init_shapes(ResNet(depth=50, width=8))
  params = variables['params']
  assert set(params) == {'conv1', 'bn1'} | {
      f'layer{k + 1}_{i}' for k, n in enumerate(STAGE_BLOCKS[50]) for i in range(n)}
  assert params['conv1']['kernel'].shape == (7, 7, 3, 8)
  assert set(params['conv1']) == {'kernel'}
  full = {'conv1', 'bn1', 'conv2', 'bn2', 'conv3', 'bn3', 'downsample_conv', 'downsample_bn'}
  assert set(params['layer1_0']) == full
  assert set(params['layer3_1']) == full - {'downsample_conv', 'downsample_bn'}
  assert params['layer2_0']['conv1']['kernel'].shape == (1, 1, 32, 16)
  assert params['layer2_0']['conv2']['kernel'].shape == (3, 3, 16, 16)
  assert params['layer2_0']['conv3']['kernel'].shape == (1, 1, 16, 64)
  assert params['layer2_0']['downsample_conv']['kernel'].shape == (1, 1, 32, 64)
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    keys = [k.key for k in path]
    if any(k.startswith('conv') or k == 'downsample_conv' for k in keys):
      assert keys[-1] == 'kernel'
  assert set(variables['batch_stats']['layer1_0']['bn1']) == {'mean', 'var'}


def test_deep_stem():
  variables, out = shapes(tiny(deep_stem=True, layout='pytorch', contract_dilation=True), 65)
  params = variables['params']
  assert {'conv1', 'conv2', 'conv3', 'bn1', 'bn2', 'bn3'} <= set(params)
  assert params['conv1']['kernel'].shape == (3, 3, 3, 8)
  assert params['conv2']['kernel'].shape == (3, 3, 8, 8)
  assert params['conv3']['kernel'].shape == (3, 3, 8, 16)
  assert params['bn3']['scale'].shape == (16,)
  assert params['layer1_0']['conv1']['kernel'].shape == (1, 1, 16, 8)
  assert params['layer1_0']['downsample_conv']['kernel'].shape == (1, 1, 16, 32)
  assert out['stem'].shape == (1, 17, 17, 16)  # 65 -> 33 (3x3 s2 p1) -> 17
  assert out['layer4'].shape == (1, 9, 9, 256)


def test_bn_options_forwarded():
  model = tiny(bn_mode='frozen_affine', bn_axis_name='batch')
  seen = []

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, BatchNorm):
      seen.append((context.module.mode, context.module.axis_name))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    shapes(model, 33, variables=tiny_variables())
  assert seen and set(seen) == {('frozen_affine', 'batch')}


def test_forward_train_updates_stats():
  model = tiny(bn_mode='train')
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 33, 33, 3)), jnp.float32)
  variables = np_variables(model, x)
  out, state = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=['batch_stats']))(
      variables, x)
  chex.assert_tree_all_finite(out)
  assert (out['layer4'] >= 0).all() and (out['layer4'] > 0).any()  # final ReLU
  assert not np.allclose(state['batch_stats']['bn1']['mean'],
                         variables['batch_stats']['bn1']['mean'])


def test_dtype():
  variables, out = shapes(tiny(dtype=jnp.bfloat16), 33)
  assert all(o.dtype == jnp.bfloat16 for o in out.values())
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))


def test_invalid_args():
  for kw in ({'output_stride': 4}, {'layout': 'tf'}, {'depth': 34}):
    with pytest.raises(ValueError):
      shapes(tiny(**kw), 33)
