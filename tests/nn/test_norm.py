"""BatchNorm modes vs a NumPy normalisation; gradients, statistics updates, cross-shard sync."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.nn import BatchNorm

EPS = 1e-5
MOMENTUM = 0.9
C = 3


def numpy_bn(x, mean, var, scale, bias):
  return (x - mean) / np.sqrt(var + EPS) * scale + bias


def numpy_batch_stats(x):
  """Per-channel mean, biased and unbiased variance over N, H, W (float64)."""
  flat = np.asarray(x, np.float64).reshape(-1, x.shape[-1])
  return flat.mean(0), flat.var(0), flat.var(0, ddof=1)


@pytest.fixture(name='x')
def fixture_x():
  rng = np.random.default_rng(0)
  return (rng.standard_normal((2, 4, 5, C)) * 2 + 1).astype(np.float32)


@pytest.fixture(name='variables')
def fixture_variables():
  """Non-trivial params and running statistics."""
  return {
      'params': {'scale': jnp.array([1.5, -0.5, 2.0]), 'bias': jnp.array([0.1, 0.2, -0.3])},
      'batch_stats': {'mean': jnp.array([0.5, -1.0, 2.0]), 'var': jnp.array([4.0, 0.25, 1.0])},
  }


def _np(tree):
  return jax.tree.map(np.asarray, tree)


def apply(mode, variables, x, train, **kwargs):
  """(output, updated batch_stats)."""
  return BatchNorm(mode, **kwargs).apply(variables, x, train, mutable=['batch_stats'])


def param_grads(mode, variables, x, train):
  def loss(params):
    y, _ = apply(mode, {**variables, 'params': params}, x, train)
    return jnp.sum(y * jnp.arange(y.size).reshape(y.shape))  # asymmetric weights
  return jax.grad(loss)(variables['params'])


def test_init_creates_params_and_stats_without_updating(x):
  variables = BatchNorm('train').init(jax.random.PRNGKey(0), x, True)
  chex.assert_trees_all_close(_np(variables), {
      'params': {'scale': np.ones(C), 'bias': np.zeros(C)},
      'batch_stats': {'mean': np.zeros(C), 'var': np.ones(C)},
  })
  assert variables['batch_stats']['var'].dtype == jnp.float32


@pytest.mark.parametrize('train', [True, False])
def test_frozen_uses_running_stats_and_no_update(x, variables, train):
  y, updates = apply('frozen', variables, x, train)
  p, s = _np(variables['params']), _np(variables['batch_stats'])
  expected = numpy_bn(x, s['mean'], s['var'], p['scale'], p['bias'])
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_equal(_np(updates['batch_stats']), s)
  grads = param_grads('frozen', variables, x, train)
  chex.assert_trees_all_equal(_np(grads), jax.tree.map(np.zeros_like, p))


def test_frozen_works_without_mutable_batch_stats(x, variables):
  y = BatchNorm('frozen').apply(variables, x, True)
  chex.assert_shape(y, x.shape)


def test_frozen_affine_train_uses_batch_stats_and_updates(x, variables):
  y, updates = apply('frozen_affine', variables, x, True)
  p, s = _np(variables['params']), _np(variables['batch_stats'])
  mean, var, unbiased_var = numpy_batch_stats(x)
  np.testing.assert_allclose(y, numpy_bn(x, mean, var, p['scale'], p['bias']),
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(updates['batch_stats']['mean'],
                             MOMENTUM * s['mean'] + (1 - MOMENTUM) * mean, rtol=1e-5)
  np.testing.assert_allclose(updates['batch_stats']['var'],
                             MOMENTUM * s['var'] + (1 - MOMENTUM) * unbiased_var, rtol=1e-5)
  grads = param_grads('frozen_affine', variables, x, True)
  chex.assert_trees_all_equal(_np(grads), jax.tree.map(np.zeros_like, p))


@pytest.mark.parametrize('mode', ['frozen_affine', 'train'])
def test_eval_uses_running_stats(x, variables, mode):
  y, updates = apply(mode, variables, x, False)
  p, s = _np(variables['params']), _np(variables['batch_stats'])
  np.testing.assert_allclose(y, numpy_bn(x, s['mean'], s['var'], p['scale'], p['bias']),
                             rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_equal(_np(updates['batch_stats']), s)


def test_train_mode_normalises_updates_and_has_gradients(x, variables):
  y, updates = apply('train', variables, x, True)
  p, s = _np(variables['params']), _np(variables['batch_stats'])
  mean, var, unbiased_var = numpy_batch_stats(x)
  np.testing.assert_allclose(y, numpy_bn(x, mean, var, p['scale'], p['bias']),
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(updates['batch_stats']['var'],
                             MOMENTUM * s['var'] + (1 - MOMENTUM) * unbiased_var, rtol=1e-5)
  grads = _np(param_grads('train', variables, x, True))
  assert np.all(np.abs(grads['scale']) > 1e-3) and np.all(np.abs(grads['bias']) > 1e-3)
  # d(sum y)/d bias = number of values per channel.
  ones_grad = jax.grad(lambda b: apply('train', {**variables, 'params': {
      'scale': variables['params']['scale'], 'bias': b}}, x, True)[0].sum())
  np.testing.assert_allclose(ones_grad(variables['params']['bias']), np.full(C, x.size // C))


def test_axis_name_sync_equals_global_batch(variables):
  rng = np.random.default_rng(1)
  x = jnp.asarray((rng.standard_normal((8, 3, 4, C)) * 3 - 2).astype(np.float32))
  shards = x.reshape(4, 2, 3, 4, C)
  synced = jax.vmap(lambda xs: apply('train', variables, xs, True, axis_name='batch'),
                    axis_name='batch')
  global_bn = lambda xg: apply('train', variables, xg, True)

  @jax.jit
  def outputs_and_grads(shards, x):
    cubic_sum = lambda f: lambda v: jnp.sum(f(v)[0] ** 3)
    return (synced(shards), global_bn(x),
            jax.grad(cubic_sum(synced))(shards), jax.grad(cubic_sum(global_bn))(x))

  (y_sharded, stats_sharded), (y_global, stats_global), grad_sharded, grad_global = (
      outputs_and_grads(shards, x))
  np.testing.assert_allclose(y_sharded.reshape(x.shape), y_global, rtol=1e-5, atol=1e-5)
  for shard in range(4):  # every shard holds the global running statistics
    chex.assert_trees_all_close(jax.tree.map(lambda a, i=shard: a[i], stats_sharded),
                                stats_global, rtol=1e-5, atol=1e-6)
  # The gradient through the synced statistics equals the global one too.
  np.testing.assert_allclose(grad_sharded.reshape(x.shape), grad_global, rtol=1e-4, atol=1e-4)


def test_bfloat16_input_keeps_dtype_and_float32_stats(x, variables):
  y, updates = apply('train', variables, jnp.asarray(x, jnp.bfloat16), True)
  assert y.dtype == jnp.bfloat16
  assert updates['batch_stats']['mean'].dtype == jnp.float32
  y32, _ = apply('train', variables, jnp.asarray(x, jnp.bfloat16), True, dtype=jnp.float32)
  assert y32.dtype == jnp.float32


def test_unknown_mode_raises(x):
  with pytest.raises(ValueError, match='eval_only'):
    BatchNorm('eval_only').init(jax.random.PRNGKey(0), x, False)
