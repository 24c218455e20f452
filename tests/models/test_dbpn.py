"""DSRNet (depth-only D-DBPN): transposed convolution, shapes, projection units, residual path.

Tiny sizes (2-4 channels, LR maps of a few pixels) and XLA optimisations off: compiles dominate.
"""
import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxseg.methods.ctkt.dsrnet import (PROJECTION, DownProjection, DSRNet, UpProjection,
                                        bicubic_upsample)
from jaxseg.nn.deconv import conv_transpose

DN = ('NHWC', 'HWIO', 'NHWC')


pytestmark = pytest.mark.usefixtures('fast_compile')  # tiny models: cheaper XLA compiles


def _rng(seed=0):
  return np.random.default_rng(seed)


@pytest.mark.parametrize('scale', sorted(PROJECTION))
def test_conv_transpose_equals_lax_and_pytorch_geometry(scale):
  """One convolution + pixel shuffle == lax.conv_transpose with PyTorch's (k, s, p) padding."""
  k, s, p = PROJECTION[scale]
  x = jnp.asarray(_rng().normal(size=(2, 3, 2, 3)), jnp.float32)
  kernel = jnp.asarray(_rng(1).normal(size=(k, k, 3, 2)), jnp.float32)
  want = lax.conv_transpose(x, kernel, (s, s), ((k - 1 - p, k - 1 - p),) * 2,
                            dimension_numbers=DN)
  got = conv_transpose(x, kernel, s, p)
  chex.assert_shape(got, (2, 3 * s, 2 * s, 2))  # PyTorch: (in - 1) s + k - 2p = s in
  np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_conv_transpose_gradients_match():
  k, s, p = PROJECTION[4]
  x = jnp.asarray(_rng().normal(size=(1, 3, 3, 2)), jnp.float32)
  kernel = jnp.asarray(_rng(1).normal(size=(k, k, 2, 2)), jnp.float32)
  probe = jnp.asarray(_rng(2).normal(size=(1, 12, 12, 2)), jnp.float32)
  ref = lambda x, w: lax.conv_transpose(x, w, (s, s), ((k - 1 - p,) * 2,) * 2,
                                        dimension_numbers=DN)
  loss = lambda f: (lambda x, w: jnp.sum(f(x, w) * probe))
  g_want = jax.grad(loss(ref), (0, 1))(x, kernel)
  g_got = jax.grad(loss(lambda x, w: conv_transpose(x, w, s, p)), (0, 1))(x, kernel)
  for a, b in zip(g_got, g_want):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-5)


def test_conv_transpose_rejects_non_exact_geometry():
  with pytest.raises(ValueError, match='kernel - 2 \\* padding == stride'):
    conv_transpose(jnp.zeros((1, 2, 2, 1)), jnp.zeros((5, 5, 1, 1)), 4, 2)


@pytest.mark.parametrize('scale', [2, 4, 8])
def test_dsrnet_shapes(scale):
  model = DSRNet(scale=scale, num_stages=2, features=4, feat0=4)
  x = jnp.asarray(_rng().uniform(size=(2, 3, 5, 1)), jnp.float32)

  def init_apply(x):
    variables = model.init(jax.random.key(0), x)
    return variables, model.apply(variables, x)

  variables, out = jax.eval_shape(init_apply, x)  # shapes only (values: the tests below)
  chex.assert_shape(out['depth'], (2, 3 * scale, 5 * scale, 1))
  assert out['depth'].dtype == jnp.float32
  assert len(out['hr_features']) == 2
  chex.assert_shape(out['hr_features'], (2, 3 * scale, 5 * scale, 4))
  params = variables['params']
  assert set(params) == {'feat0', 'feat0_act', 'feat1', 'feat1_act', 'up1', 'down1', 'up2',
                         'output'}
  k = PROJECTION[scale][0]
  chex.assert_shape(params['up1']['deconv1']['kernel'], (k, k, 4, 4))
  chex.assert_shape(params['down1']['conv1']['kernel'], (k, k, 4, 4))
  chex.assert_shape(params['output']['kernel'], (3, 3, 8, 1))  # T * features -> 1


def test_dense_bottlenecks_and_plain_chain():
  x = jnp.zeros((1, 2, 2, 1))
  dense = DSRNet(scale=2, num_stages=3, features=4, feat0=4, dense=True)
  p = jax.eval_shape(lambda: dense.init(jax.random.key(0), x))['params']
  # Units with more than one earlier map of the other kind start with a 1x1 bottleneck.
  assert 'bottleneck' not in p['up1'] and 'bottleneck' not in p['down1']
  assert 'bottleneck' not in p['up2']  # one LR map (down1)
  chex.assert_shape(p['down2']['bottleneck']['kernel'], (1, 1, 8, 4))  # up2, up1
  chex.assert_shape(p['up3']['bottleneck']['kernel'], (1, 1, 8, 4))    # down2, down1
  plain = DSRNet(scale=2, num_stages=3, features=4, feat0=4, dense=False)
  q = jax.eval_shape(lambda: plain.init(jax.random.key(0), x))['params']
  assert not any('bottleneck' in q[m] for m in q if m.startswith(('up', 'down')))
  chex.assert_shape(q['output']['kernel'], (3, 3, 12, 1))  # still all T HR maps


def test_prelu_slope_starts_at_pytorch_default():
  model = DSRNet(scale=2, num_stages=1, features=2, feat0=2)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))['params']
  slopes = [v for k, v in flax.traverse_util.flatten_dict(params, sep='/').items()
            if k.endswith('negative_slope')]
  assert len(slopes) == 2 + 3  # feat0, feat1, up1 (deconv1, conv, deconv2)
  np.testing.assert_array_equal(np.stack(slopes), 0.25)


def _prelu(x, a):
  return np.where(x >= 0, x, a * x)


def _np_deconv(x, layer, k, s, p):
  y = lax.conv_transpose(jnp.asarray(x), layer['kernel'], (s, s), ((k - 1 - p,) * 2,) * 2,
                         dimension_numbers=DN)
  return np.asarray(y) + np.asarray(layer['bias'])


def _np_conv(x, layer, k, s, p):
  y = lax.conv_general_dilated(jnp.asarray(x), layer['kernel'], (s, s), ((p, p), (p, p)),
                               dimension_numbers=DN)
  return np.asarray(y) + np.asarray(layer['bias'])


def _random_params(shapes, seed):
  rng = _rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.3, s.shape), jnp.float32), shapes)


def test_up_projection_math():
  """h0 = PReLU(deconv(x)); l0 = PReLU(conv(h0)); h1 = PReLU(deconv(l0 - x)); out h0 + h1."""
  k, s, p = PROJECTION[2]
  x = _rng(3).normal(size=(1, 2, 3, 2)).astype(np.float32)
  unit = UpProjection(features=2, scale=2)
  params = _random_params(jax.eval_shape(lambda: unit.init(jax.random.key(0), x))['params'], 4)
  got = jax.jit(unit.apply)({'params': params}, jnp.asarray(x))
  a = lambda name: float(params[name + '_act']['negative_slope'])
  h0 = _prelu(_np_deconv(x, params['deconv1'], k, s, p), a('deconv1'))
  l0 = _prelu(_np_conv(h0, params['conv'], k, s, p), a('conv'))
  h1 = _prelu(_np_deconv(l0 - x, params['deconv2'], k, s, p), a('deconv2'))
  chex.assert_shape(got, (1, 4, 6, 2))
  np.testing.assert_allclose(got, h0 + h1, atol=1e-5, rtol=1e-5)


def test_down_projection_math_with_bottleneck():
  """x' = PReLU(1x1(x)); l0 = PReLU(conv(x')); h0 = PReLU(deconv(l0)); l1 = PReLU(conv(h0 - x'));
  out l0 + l1."""
  k, s, p = PROJECTION[2]
  x = _rng(5).normal(size=(1, 4, 6, 3)).astype(np.float32)  # 3 channels -> bottleneck to 2
  unit = DownProjection(features=2, scale=2)
  params = _random_params(jax.eval_shape(lambda: unit.init(jax.random.key(0), x))['params'], 6)
  got = jax.jit(unit.apply)({'params': params}, jnp.asarray(x))
  a = lambda name: float(params[name + '_act']['negative_slope'])
  xb = _prelu(_np_conv(x, params['bottleneck'], 1, 1, 0), a('bottleneck'))
  l0 = _prelu(_np_conv(xb, params['conv1'], k, s, p), a('conv1'))
  h0 = _prelu(_np_deconv(l0, params['deconv'], k, s, p), a('deconv'))
  l1 = _prelu(_np_conv(h0 - xb, params['conv2'], k, s, p), a('conv2'))
  chex.assert_shape(got, (1, 2, 3, 2))
  np.testing.assert_allclose(got, l0 + l1, atol=1e-5, rtol=1e-5)


def test_residual_adds_the_bicubic_input():
  x = jnp.asarray(_rng(7).uniform(size=(1, 3, 3, 1)), jnp.float32)
  given = jnp.asarray(_rng(8).uniform(size=(1, 6, 6, 1)), jnp.float32)
  plain = DSRNet(scale=2, num_stages=1, features=2, feat0=2)
  res = plain.clone(residual=True)

  @jax.jit
  def outputs(x, given):
    variables = plain.init(jax.random.key(0), x)
    return (plain.apply(variables, x)['depth'], res.apply(variables, x)['depth'],
            res.apply(variables, x, given)['depth'], bicubic_upsample(x, 2))

  base, in_model, from_pipeline, bicubic = outputs(x, given)
  # In-model bicubic (no pipeline map): jax.image.resize, Keys a = -0.5.
  np.testing.assert_allclose(in_model - base, bicubic, atol=1e-6)
  # A pipeline up-sampling (B, H, W, 1) is used as given.
  np.testing.assert_allclose(from_pipeline - base, given, atol=1e-6)
  # Constant maps are reproduced exactly by the bicubic kernel.
  np.testing.assert_allclose(bicubic_upsample(jnp.full((1, 2, 3, 1), 0.7), 4), 0.7, atol=1e-6)
