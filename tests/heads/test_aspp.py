"""Tests for jaxseg.heads.aspp (DeepLab v2 summed ASPP)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxseg.heads import ASPP


def manual_branch(x, p, rate):
  y = lax.conv_general_dilated(x, p['kernel'], (1, 1), ((rate, rate), (rate, rate)),
                               rhs_dilation=(rate, rate), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y + p['bias']


def init_random(model, x, key):
  """Init, then replace params by random values so that biases are non-zero too."""
  params = model.init(jax.random.key(0), x)['params']
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  leaves = [0.1 * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)]
  return {'params': jax.tree.unflatten(tree, leaves)}


@pytest.mark.parametrize('rates', [(6, 12, 18, 24), (1, 2, 3)])
def test_output_is_sum_of_branches(rates):
  x = jax.random.normal(jax.random.key(1), (2, 9, 11, 16))
  model = ASPP(num_classes=5, rates=rates)
  variables = init_random(model, x, jax.random.key(2))
  out = model.apply(variables, x)
  params = variables['params']
  assert set(params) == {f'branch_{i}' for i in range(len(rates))}
  want = sum(manual_branch(x, params[f'branch_{i}'], r) for i, r in enumerate(rates))
  chex.assert_shape(out, (2, 9, 11, 5))
  chex.assert_trees_all_close(out, want, atol=1e-5, rtol=1e-5)


def test_num_branches_sums_first_n_but_keeps_all_params():
  x = jax.random.normal(jax.random.key(1), (1, 7, 7, 8))
  model = ASPP(num_classes=3, num_branches=2)
  variables = init_random(model, x, jax.random.key(3))
  params = variables['params']
  assert set(params) == {'branch_0', 'branch_1', 'branch_2', 'branch_3'}  # checkpoint-compatible
  out = model.apply(variables, x)
  want = manual_branch(x, params['branch_0'], 6) + manual_branch(x, params['branch_1'], 12)
  chex.assert_trees_all_close(out, want, atol=1e-5, rtol=1e-5)
  full = ASPP(num_classes=3).apply(variables, x)
  assert not np.allclose(out, full)


def test_invalid_num_branches():
  x = jnp.zeros((1, 5, 5, 4))
  for n in (0, 5):
    with pytest.raises(ValueError):
      ASPP(num_classes=3, num_branches=n).init(jax.random.key(0), x)


def test_init_statistics():
  x = jnp.zeros((1, 5, 5, 256))
  params = ASPP(num_classes=21).init(jax.random.key(0), x)['params']
  for i in range(4):
    k, b = params[f'branch_{i}']['kernel'], params[f'branch_{i}']['bias']
    assert k.shape == (3, 3, 256, 21) and b.shape == (21,)
    assert abs(float(k.std()) - 0.01) < 0.0005
    assert abs(float(k.mean())) < 0.0005
    np.testing.assert_array_equal(b, 0.0)
  assert not np.allclose(params['branch_0']['kernel'], params['branch_1']['kernel'])


def test_dtype():
  x = jnp.ones((1, 5, 5, 4), jnp.bfloat16)
  model = ASPP(num_classes=3, rates=(1, 2), dtype=jnp.bfloat16)
  variables = model.init(jax.random.key(0), x)
  assert model.apply(variables, x).dtype == jnp.bfloat16
  assert variables['params']['branch_0']['kernel'].dtype == jnp.float32
