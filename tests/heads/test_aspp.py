"""Tests for jaxseg.heads.aspp (DeepLab v2 summed ASPP)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxseg.heads import ASPP


def normal(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def manual_branch(x, p, rate):
  y = lax.conv_general_dilated(x, p['kernel'], (1, 1), ((rate, rate), (rate, rate)),
                               rhs_dilation=(rate, rate), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y + p['bias']


def random_variables(model, x, seed):
  """NumPy-random params (biases non-zero too) with the shapes of model.init."""
  abstract = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(0.1 * rng.normal(size=s.shape), jnp.float32), abstract)


@pytest.mark.parametrize('rates', [(6, 12, 18, 24), (1, 2, 3)])
def test_output_is_sum_of_branches(rates):
  x = normal((2, 9, 11, 16), 1)
  model = ASPP(num_classes=5, rates=rates)
  variables = random_variables(model, x, 2)
  params = variables['params']
  assert set(params) == {f'branch_{i}' for i in range(len(rates))}

  @jax.jit
  def run(variables, x):
    p = variables['params']
    want = sum(manual_branch(x, p[f'branch_{i}'], r) for i, r in enumerate(rates))
    return model.apply(variables, x), want

  out, want = run(variables, x)
  chex.assert_shape(out, (2, 9, 11, 5))
  chex.assert_trees_all_close(out, want, atol=1e-5, rtol=1e-5)


def test_num_branches_sums_first_n_but_keeps_all_params():
  x = normal((1, 7, 7, 8), 1)
  model = ASPP(num_classes=3, num_branches=2)
  params = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)['params']
  assert set(params) == {'branch_0', 'branch_1', 'branch_2', 'branch_3'}  # checkpoint-compatible
  variables = random_variables(model, x, 3)

  @jax.jit
  def run(variables, x):
    p = variables['params']
    want = manual_branch(x, p['branch_0'], 6) + manual_branch(x, p['branch_1'], 12)
    return model.apply(variables, x), want, ASPP(num_classes=3).apply(variables, x)

  out, want, full = run(variables, x)
  chex.assert_trees_all_close(out, want, atol=1e-5, rtol=1e-5)
  assert not np.allclose(out, full)


def test_invalid_num_branches():
  x = jax.ShapeDtypeStruct((1, 5, 5, 4), jnp.float32)
  for n in (0, 5):
    with pytest.raises(ValueError):
      jax.eval_shape(lambda x: ASPP(num_classes=3, num_branches=n).init(jax.random.key(0), x), x)


def test_init_statistics():
  x = jnp.zeros((1, 5, 5, 256))
  params = jax.jit(lambda x: ASPP(num_classes=21).init(jax.random.key(0), x))(x)['params']
  for i in range(4):
    k, b = params[f'branch_{i}']['kernel'], params[f'branch_{i}']['bias']
    assert k.shape == (3, 3, 256, 21) and b.shape == (21,)
    assert abs(float(k.std()) - 0.01) < 0.0005
    assert abs(float(k.mean())) < 0.0005
    np.testing.assert_array_equal(b, 0.0)
  assert not np.allclose(params['branch_0']['kernel'], params['branch_1']['kernel'])


def test_dtype():
  x = jax.ShapeDtypeStruct((1, 5, 5, 4), jnp.bfloat16)
  model = ASPP(num_classes=3, rates=(1, 2), dtype=jnp.bfloat16)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
  assert jax.eval_shape(model.apply, variables, x).dtype == jnp.bfloat16
  assert variables['params']['branch_0']['kernel'].dtype == jnp.float32
