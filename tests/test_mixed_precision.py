"""Mixed precision (config.model.dtype='bfloat16'): bfloat16 compute, float32 master weights,
float32 BatchNorm statistics and loss; the whole train step trains."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import methods
from jaxseg.config_files import load_config
from jaxseg.data import sources

STEPS = 6
# Cheap XLA compiles (bfloat16 on CPU compiles slowly): this checks dtypes and that it trains.
pytestmark = pytest.mark.usefixtures('fast_compile')


def _config(conv_impl, msc, lr):
  c = load_config('configs/deeplabv2.py:smoke')
  c.batch_size = 2
  c.dataset.augment.crop_size = (33, 33)
  c.model.dtype = 'bfloat16'
  c.model.conv_impl = conv_impl
  c.model.msc = msc
  c.optimizer.learning_rate = lr
  return c


def _batch(num_classes, size=33):
  """A tiny fixed batch whose labels are learnable from the image (a colour per region)."""
  rng = np.random.default_rng(0)
  label = np.zeros((2, size, size), np.int32)
  label[:, :, size // 2:] = 1
  label[1, : size // 3] = 2
  colours = rng.normal(0, 60, (num_classes, 3)).astype(np.float32)
  image = colours[label] + rng.normal(0, 10, (2, size, size, 3)).astype(np.float32)
  return {'image': image, 'label': label}


def _dtypes(tree):
  return {str(x.dtype) for x in jax.tree_util.tree_leaves(tree)}


# The config default (matmul convolutions) and XLA's own convolutions. Multi-scale input is off:
# it only adds compile time (2 minutes in bfloat16 on CPU); its loss is tested in float32.
@pytest.mark.parametrize('conv_impl,msc,lr', [('matmul', False, 3e-3), ('xla', False, 3e-3)])
def test_bfloat16_trains_with_float32_master_weights(conv_impl, msc, lr):
  config = _config(conv_impl, msc, lr)
  meta = sources.make_source(config.dataset, 'train').meta
  method = methods.build_method(config, meta)
  batch = jax.device_put(_batch(method.num_classes))
  state = method.init_state(jax.random.PRNGKey(0), batch)
  assert _dtypes(state.params) == {'float32'}
  assert _dtypes(state.batch_stats) == {'float32'}

  # The compute really is bfloat16: logits come out in the compute dtype.
  out = method.model.apply({'params': state.params, 'batch_stats': state.batch_stats},
                           batch['image'], train=False)
  assert out['logits'].dtype == jnp.bfloat16
  assert np.isfinite(np.asarray(out['logits'], np.float32)).all()

  step = jax.jit(method.train_step)
  losses = []
  for _ in range(STEPS):
    state, metrics = step(state, batch)
    assert metrics['loss'].dtype == jnp.float32
    losses.append(float(metrics['loss']))
  assert np.isfinite(losses).all(), losses
  assert losses[-1] < 0.5 * losses[0], losses
  assert np.isfinite(float(metrics['grad_norm']))

  # Master weights, optimizer state and BN statistics stay float32 and finite.
  for tree in (state.params, state.batch_stats, state.opt_state):
    assert _dtypes(tree) <= {'float32', 'int32'}, _dtypes(tree)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(tree))
  # BatchNorm ('train' mode) updated its float32 running statistics.
  means = [np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(state.batch_stats)
           if 'mean' in jax.tree_util.keystr(p)]
  assert any(np.abs(m).max() > 0 for m in means)

  preds = jax.jit(method.predict_step)(state, batch)['label']
  assert preds.shape == batch['label'].shape
