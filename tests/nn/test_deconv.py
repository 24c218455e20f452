"""The one transposed convolution (jaxseg.nn.deconv): both methods equal flax's stride-2 'SAME'
ConvTranspose (PAD-Net) and lax.conv_transpose with PyTorch geometry at strides 2-16 (DSRNet)."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn.deconv import ConvTranspose, conv_transpose


def conv_transpose_2x(x, kernel, impl='xla', method=None):
  """The PAD-Net geometry: stride 2, PyTorch padding k / 2 - 1."""
  return conv_transpose(x, kernel, 2, kernel.shape[0] // 2 - 1, impl, method)


def _reference(x, kernel):
  k = kernel.shape[0]
  module = nn.ConvTranspose(kernel.shape[3], (k, k), strides=(2, 2), padding='SAME',
                            use_bias=False)
  return module.apply({'params': {'kernel': kernel}}, x)


def _rel(a, b):
  return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize('k', [2, 4, 6])
@pytest.mark.parametrize('impl,method', [('xla', 'split'), ('matmul', 'split'),
                                         ('xla', 'packed')])
def test_equals_flax_conv_transpose_value_and_gradients(k, impl, method):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 7, 3))
  kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, 3, 4))
  want = _reference(x, kernel)
  got = conv_transpose_2x(x, kernel, impl, method)
  chex.assert_shape(got, (2, 10, 14, 4))
  assert _rel(got, want) < 1e-6
  probe = jax.random.normal(jax.random.PRNGKey(2), want.shape)
  loss = lambda f: (lambda x, w: jnp.sum(f(x, w) * probe))
  g_want = jax.grad(loss(_reference), (0, 1))(x, kernel)
  g_got = jax.grad(loss(lambda x, w: conv_transpose_2x(x, w, impl, method)), (0, 1))(x, kernel)
  for a, b in zip(g_got, g_want):
    assert _rel(a, b) < 1e-6


def test_hand_computed_one_dimensional_case():
  # One row, one channel: y[2m] = x[m-1] K[0] + x[m] K[2]; y[2m+1] = x[m] K[1] + x[m+1] K[3].
  x = jnp.asarray([1., 2., 3.]).reshape(1, 1, 3, 1)
  taps = jnp.asarray([1., 10., 100., 1000.])
  kernel = jnp.zeros((4, 4, 1, 1)).at[2, :, 0, 0].set(taps)  # row tap 2: input row m, even out
  for method in ('split', 'packed'):
    y = conv_transpose_2x(x, kernel, method=method)[0, 0, :, 0]
    np.testing.assert_allclose(y, [100., 2010., 201., 3020., 302., 30.])


def test_module_matches_param_layout_and_rejects_inexact_geometry():
  x = jnp.ones((1, 4, 4, 8))
  variables = ConvTranspose(6).init(jax.random.PRNGKey(0), x)
  assert set(variables['params']) == {'kernel'}  # no bias by default (PAD-Net)
  chex.assert_shape(variables['params']['kernel'], (4, 4, 8, 6))
  chex.assert_shape(ConvTranspose(6).apply(variables, x), (1, 8, 8, 6))
  biased = ConvTranspose(6, 8, stride=4, padding=2, use_bias=True).init(jax.random.PRNGKey(0), x)
  chex.assert_shape(biased['params']['bias'], (6,))
  with pytest.raises(ValueError, match='kernel - 2 \\* padding == stride'):
    conv_transpose(x, jnp.ones((3, 3, 8, 6)), 2, 0)
  with pytest.raises(ValueError, match='method'):
    conv_transpose(x, jnp.ones((4, 4, 8, 6)), 2, 1, method='fft')


@pytest.mark.parametrize('k,s,p', [(6, 2, 2), (8, 4, 2), (12, 8, 2), (20, 16, 2)])
def test_split_equals_packed_at_the_dbpn_strides(k, s, p):
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 3, 2, 2))
  kernel = jax.random.normal(jax.random.PRNGKey(1), (k, k, 2, 3))
  want = jax.lax.conv_transpose(x, kernel, (s, s), ((k - 1 - p, k - 1 - p),) * 2,
                                dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  for method in ('split', 'packed'):
    assert _rel(conv_transpose(x, kernel, s, p, method=method), want) < 1e-6
