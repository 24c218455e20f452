"""conv2d / Conv2D: dilation, stride, padding, params, impl dispatch."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseg.nn.conv as conv_module
from jaxseg.nn import Conv2D, conv2d, conv_padding


def zero_inserted_kernel(kernel: np.ndarray, dilation: int) -> np.ndarray:
  """(k, k, I, O) -> ((k-1)*d+1, (k-1)*d+1, I, O) with d-1 zeros between taps."""
  k = kernel.shape[0]
  size = (k - 1) * dilation + 1
  dense = np.zeros((size, size) + kernel.shape[2:], kernel.dtype)
  dense[::dilation, ::dilation] = kernel
  return dense


def numpy_dense_conv(x: np.ndarray, kernel: np.ndarray, stride: int, pad: int) -> np.ndarray:
  """Undilated NHWC x HWIO cross-correlation with symmetric zero padding, in float64."""
  x = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  kh, kw = kernel.shape[:2]
  out_h = (x.shape[1] - kh) // stride + 1
  out_w = (x.shape[2] - kw) // stride + 1
  out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
  for a in range(kh):
    for b in range(kw):
      window = x[:, a:a + stride * (out_h - 1) + 1:stride, b:b + stride * (out_w - 1) + 1:stride]
      out += window @ kernel[a, b].astype(np.float64)
  return out


@pytest.mark.parametrize('dilation', [1, 2, 4])
@pytest.mark.parametrize('stride', [1, 2])
def test_dilated_conv_equals_zero_inserted_dense_conv(dilation, stride):
  rng = np.random.default_rng(dilation * 10 + stride)
  x = rng.standard_normal((2, 9, 10, 3)).astype(np.float32)
  kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
  y = conv2d(jnp.asarray(x), jnp.asarray(kernel), strides=stride, dilation=dilation)
  expected = numpy_dense_conv(x, zero_inserted_kernel(kernel, dilation), stride, pad=dilation)
  chex.assert_shape(y, expected.shape)
  np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_default_padding_keeps_size_for_odd_kernels():
  x = jnp.ones((1, 7, 8, 2))
  for k, d in [(1, 1), (3, 1), (3, 6), (7, 1), (5, 2)]:
    y = conv2d(x, jnp.ones((k, k, 2, 3)), dilation=d)
    chex.assert_shape(y, (1, 7, 8, 3))


def test_padding_forms():
  assert conv_padding((3, 3), 2, None) == ((2, 2), (2, 2))
  assert conv_padding((7, 1), 1, None) == ((3, 3), (0, 0))
  assert conv_padding((3, 3), 1, 0) == ((0, 0), (0, 0))
  assert conv_padding((3, 3), 1, (1, 2)) == ((1, 1), (2, 2))
  assert conv_padding((3, 3), 1, ((0, 1), (2, 3))) == ((0, 1), (2, 3))
  y = conv2d(jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 1)), padding=((0, 1), (2, 0)))
  chex.assert_shape(y, (1, 4, 5, 1))
  np.testing.assert_allclose(np.asarray(y[0, :, :, 0]),
                             [[3, 6, 9, 9, 9]] * 3 + [[2, 4, 6, 6, 6]])


def test_grouped_conv_matches_per_group_convs():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((1, 5, 5, 4)), jnp.float32)
  kernel = jnp.asarray(rng.standard_normal((3, 3, 2, 6)), jnp.float32)
  y = conv2d(x, kernel, feature_group_count=2)
  parts = [conv2d(x[..., 2 * g:2 * g + 2], kernel[..., 3 * g:3 * g + 3]) for g in range(2)]
  np.testing.assert_allclose(y, jnp.concatenate(parts, -1), rtol=1e-5, atol=1e-5)


def test_unknown_impl_raises():
  with pytest.raises(ValueError, match='bogus'):
    conv2d(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1)), impl='bogus')


def test_matmul_impl_dispatches_to_conv_vjp(monkeypatch):
  calls = []

  def fake(x, kernel, strides, padding, dilation, feature_group_count):
    calls.append((strides, padding, dilation, feature_group_count))
    return x

  monkeypatch.setattr(conv_module, 'conv2d_matmul_wgrad', fake)
  conv2d(jnp.ones((1, 8, 8, 2)), jnp.ones((3, 3, 2, 2)), strides=2, dilation=2, impl='matmul')
  assert calls == [((2, 2), ((2, 2), (2, 2)), (2, 2), 1)]


def test_conv2d_module_shapes_and_params():
  x = jax.ShapeDtypeStruct((2, 9, 9, 3), jnp.float32)
  module = Conv2D(8, kernel_size=3, strides=2, dilation=1, use_bias=True)
  variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  params = variables['params']
  assert set(params) == {'kernel', 'bias'}
  chex.assert_shape(params['kernel'], (3, 3, 3, 8))
  chex.assert_shape(params['bias'], (8,))
  chex.assert_shape(jax.eval_shape(module.apply, variables, x), (2, 5, 5, 8))

  module = Conv2D(4, kernel_size=(1, 3), dilation=2)
  variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  assert set(variables['params']) == {'kernel'}
  chex.assert_shape(variables['params']['kernel'], (1, 3, 3, 4))
  chex.assert_shape(jax.eval_shape(module.apply, variables, x), (2, 9, 9, 4))


def test_conv2d_compute_dtype():
  x = jax.ShapeDtypeStruct((1, 6, 6, 3), jnp.float32)
  module = Conv2D(4, kernel_size=3, dtype=jnp.bfloat16)
  variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  assert variables['params']['kernel'].dtype == jnp.float32
  assert jax.eval_shape(module.apply, variables, x).dtype == jnp.bfloat16
  assert jax.eval_shape(Conv2D(4).apply, variables, x).dtype == jnp.float32


def test_conv2d_he_normal_init_and_bias():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 5, 5, 3)), jnp.float32)
  module = Conv2D(64, kernel_size=3, use_bias=True, bias_init=nn.initializers.constant(0.5))
  variables = module.init(jax.random.PRNGKey(0), x)
  kernel = variables['params']['kernel']
  assert kernel.dtype == jnp.float32
  # 1728 samples: the sample std is within ~6% (3.5 sigma) of sqrt(2 / fan_out).
  np.testing.assert_allclose(np.std(kernel), np.sqrt(2.0 / (3 * 3 * 64)), rtol=0.06)
  np.testing.assert_allclose(module.apply(variables, x), conv2d(x, kernel) + 0.5,
                             rtol=1e-5, atol=1e-5)
