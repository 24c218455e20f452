"""PAD-Net tenant on a tiny model (ResNet-14 width 8, N=16, 33x33, 7 classes).

Variables are NumPy fills of `jax.eval_shape` shapes (Flax random init compiles slowly on CPU);
XLA optimisations are off for these compiles.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import np_variables
from jaxseg.configlib import set_field
from jaxseg.runner import config_checks
from jaxseg.config_files import load_config
from jaxseg.data import sources, synthetic
from jaxseg.data.sources import SOURCES
from jaxseg.methods import build_method
from jaxseg.methods.padnet.method import PadNetMethod, fast_init
from jaxseg.training.state import TrainState

B, H, W = 4, 33, 33
TINY = dict(depth=14, width=8, features=16, aggregate_features=8)


pytestmark = pytest.mark.usefixtures('fast_compile')  # tiny models: cheaper XLA compiles


def tiny_config(*flags):
  c = load_config('configs/padnet.py:' + ','.join(('smoke',) + flags))
  c.model.update(TINY)
  c.optimizer.update(weight_decay=0.0, warmup_steps=0)  # a param moves iff its gradient != 0
  c.dataset.update(image_size=(H, W))
  c.dataset.augment.crop_size = (H, W)
  return c


def make_method(*flags) -> PadNetMethod:
  c = tiny_config(*flags)
  return build_method(c, sources.make_source(c.dataset, 'train').meta)


@pytest.fixture(scope='module')
def batch():
  """Synthetic scenes through the eval transform, with a per-example mask."""
  c = tiny_config()
  src = sources.make_source(c.dataset, 'val')
  tf = PadNetMethod(c, src.meta).eval_transform()
  examples = [tf(src[i]) for i in range(B)]
  out = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  out['mask'] = np.ones((B,), bool)
  return out


def np_state(method, batch, seed=0) -> TrainState:
  """TrainState with BN scale/var 1, mean/bias 0, kernels He-normal (NumPy), no compile."""
  v = np_variables(method.model, jnp.asarray(batch['image'][:1]), seed=seed, train=False)
  tx = method._ensure_tx(v['params'])  # pylint: disable=protected-access
  return TrainState.create(v['params'], v['batch_stats'], tx, jax.random.key(1))


def sharded_method(flag) -> PadNetMethod:
  """The tenant built with an axis name (pmap semantics; run below as vmap over 2 shards)."""
  c = tiny_config(flag)
  return PadNetMethod(c, sources.make_source(c.dataset, 'train').meta, axis_name='data')


def split2(d):
  return {k: v.reshape((2, v.shape[0] // 2) + v.shape[1:]) for k, v in d.items()}


def on_axis(fn):
  """`fn(state, batch)` mapped over 2 shards with axis 'data'; outputs of shard 0."""
  mapped = jax.jit(jax.vmap(fn, in_axes=(None, 0), axis_name='data'))
  return lambda state, batch: jax.tree.map(lambda x: x[0], mapped(state, split2(batch)))


MODULES = {
    'C': {'backbone', 'aggregate_layer1', 'distillation', 'embed_depth', 'decoder_depth',
          'decoder_parsing', 'inter_pred_contours', 'branch_normals'},
    'B': {'distillation', 'embed_normals', 'decoder_parsing'},
    'A': {'embed_contours', 'decoder_depth'},
    'none': {'inter_pred_normals', 'decoder_parsing'},
    'multitask': {'branch_depth', 'branch_parsing', 'decoder_depth', 'decoder_parsing'},
    'single_depth': {'branch_depth', 'decoder_depth'},
    'single_parsing': {'branch_parsing', 'decoder_parsing'},
}
ABSENT = {
    'C': set(), 'B': set(), 'A': {'distillation'},
    'none': {'distillation', 'embed_depth', 'embed_normals'},
    'multitask': {'inter_pred_depth', 'branch_normals', 'distillation', 'embed_depth'},
    'single_depth': {'branch_parsing', 'decoder_parsing', 'inter_pred_parsing',
                     'branch_normals', 'distillation'},
    'single_parsing': {'branch_depth', 'decoder_depth', 'inter_pred_depth', 'distillation'},
}
TERMS = {
    'multitask': ('loss_depth', 'loss_parsing'), 'single_depth': ('loss_depth',),
    'single_parsing': ('loss_parsing',),
}
ALL_TERMS = ('loss_depth', 'loss_parsing', 'loss_inter_depth', 'loss_inter_normals',
             'loss_inter_contours', 'loss_inter_parsing')


@pytest.mark.parametrize('flag', list(MODULES))
def test_train_step_moves_exactly_the_used_params(flag, batch):
  method = make_method(flag)
  state = np_state(method, batch)
  modules = set(state.params)
  assert MODULES[flag] <= modules and not ABSENT[flag] & modules, sorted(modules)
  train = {k: v for k, v in batch.items() if k != 'mask'}
  new, metrics = jax.jit(method.train_step)(state, train)
  assert set(metrics) == {'loss', 'grad_norm', *TERMS.get(flag, ALL_TERMS)}
  for k, v in metrics.items():
    assert np.isfinite(v), (k, v)
  assert float(metrics['grad_norm']) > 0
  # Adam without weight decay: a parameter moves iff its gradient is non-zero.
  moved = jax.tree_util.tree_map_with_path(
      lambda p, a, b: (jax.tree_util.keystr(p), bool(np.any(np.asarray(a) != np.asarray(b)))),
      state.params, new.params)
  still = [name for name, m in jax.tree.leaves(moved, is_leaf=lambda x: isinstance(x, tuple))
           if not m]
  assert not still, still
  assert int(new.step) == 1
  if flag == 'C':
    # With an axis name: global-mean losses, psum'd gradients, BN statistics and contour class
    # balance over the axis give the global-batch step.
    sharded = sharded_method(flag)
    sharded._ensure_tx(state.params)  # pylint: disable=protected-access
    got_state, got = on_axis(sharded.train_step)(state, train)
    for k in metrics:
      np.testing.assert_allclose(got[k], metrics[k], rtol=2e-4, err_msg=k)
    chex.assert_trees_all_close(got_state.params, new.params, rtol=1e-3, atol=1e-5)


def test_fast_init_matches_the_layer_initializers(batch):
  method = make_method('C')
  image = jnp.asarray(batch['image'][:1])
  v = jax.jit(lambda k: fast_init(method.model, k, image))(jax.random.key(0))
  ref = jax.eval_shape(lambda: method.model.init(jax.random.key(0), image, train=False))
  chex.assert_trees_all_equal_shapes_and_dtypes(v, ref)
  kernels = []
  for path, x in jax.tree_util.tree_flatten_with_path(v)[0]:
    name, x = path[-1].key, np.asarray(x)
    if name == 'kernel':
      kernels.append(x)
      std = np.sqrt(2.0 / (np.prod(x.shape[:-2]) * x.shape[-1]))  # He normal, fan-out
      if x.size >= 2000:
        assert abs(x.std() / std - 1) < 0.1, (jax.tree_util.keystr(path), x.std(), std)
      assert np.abs(x).max() <= 2 * std / 0.8796 + 1e-6  # truncated at 2 sigma
    else:
      assert np.all(x == (1.0 if name in ('scale', 'var') else 0.0)), jax.tree_util.keystr(path)
  # Independent draws (not one block repeated).
  assert len({float(k.ravel()[0]) for k in kernels}) == len(kernels)


def _eval(method, state, batch):
  return jax.device_get(jax.jit(method.eval_step)(state, batch))


def _assert_sums_close(got, want):
  """Float sums to 1e-4; integer counts (histogram bins, confusion) to 0.1% of their total:
  a value within an ulp of a bin edge may land in the neighbouring bin when the batch split
  (and so XLA's code) differs."""
  def check(path, g, w):
    g, w = np.asarray(g), np.asarray(w)
    if np.issubdtype(w.dtype, np.integer):
      moved = np.abs(g.astype(np.int64) - w).sum()
      assert moved <= max(2, 1e-3 * np.abs(w).sum()), (jax.tree_util.keystr(path), moved)
    else:
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-3, err_msg=jax.tree_util.keystr(path))
  chex.assert_trees_all_equal_structs(got, want)
  jax.tree_util.tree_map_with_path(check, got, want)


@pytest.mark.parametrize('flag', ['C', 'single_depth'])
def test_eval_sums_add_over_batches_and_honour_mask(flag, batch):
  method = make_method(flag)
  state = np_state(method, batch)
  half = lambda sl: {k: v[sl] for k, v in batch.items()}
  full = _eval(method, state, batch)
  a, b = _eval(method, state, half(slice(0, 2))), _eval(method, state, half(slice(2, 4)))
  expected = {'C': {'confusion', 'depth', 'normals', 'contours'}, 'single_depth': {'depth'}}
  assert set(full) == expected[flag]
  added = jax.tree.map(np.add, a, b)
  _assert_sums_close(added, full)
  # Padding examples (mask False) contribute nothing.
  padded = dict(batch, mask=np.array([True, True, False, False]))
  _assert_sums_close(_eval(method, state, padded), a)
  if flag == 'C':
    assert int(np.sum(full['confusion'])) == int(np.sum(batch['label'] != 255))
    sums = jax.device_get(on_axis(sharded_method(flag).eval_step)(state, batch))
    _assert_sums_close(sums, full)


def test_summarize_predict_render(batch):
  method = make_method('C')
  state = np_state(method, batch)
  scalars, report = method.summarize(_eval(method, state, batch))
  want = {'miou', 'pixel_accuracy', 'mean_accuracy', 'iou/floor'}
  want |= {f'depth/{k}' for k in ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'd1', 'd2',
                                   'd3')}
  want |= {'normals/mean', 'normals/median', 'normals/within_11.25', 'normals/within_22.5',
           'normals/within_30', 'contours/ods_f', 'contours/ois_f'}
  assert want <= set(scalars), sorted(want - set(scalars))
  assert all(np.isfinite(v) for v in scalars.values())
  for word in ('mIoU', 'rmse', 'abs_rel', 'median', 'ods_f'):
    assert word in report

  pred = jax.device_get(jax.jit(method.predict_step)(state, {'image': batch['image']}))
  assert set(pred) == {'label', 'depth', 'normals', 'contours'}
  chex.assert_shape([pred['label'], pred['depth'], pred['contours']], (B, H, W))
  chex.assert_shape(pred['normals'], (B, H, W, 3))
  np.testing.assert_allclose(np.linalg.norm(pred['normals'], axis=-1), 1.0, atol=1e-4)
  assert 0 <= pred['contours'].min() and pred['contours'].max() <= 1

  raw = synthetic.SyntheticScenes(seed=7, num_examples=1, height=H, width=W)[0]['image']
  one = lambda d: {k: v[0] for k, v in d.items()}
  panel = method.render(one(batch), one(pred), raw)
  assert panel.dtype == np.uint8 and panel.ndim == 3 and panel.shape[2] == 3
  assert (panel.shape[1] - 4) // (W + 4) == 9  # image + 4 tasks x (gt, prediction)
  single = make_method('single_parsing')
  panel = single.render(one(batch), {'label': pred['label'][0]}, raw)
  assert (panel.shape[1] - 4) // (W + 4) == 3


@pytest.mark.parametrize('spec', ['', 'smoke', 'nyuv2', 'cityscapes', 'smoke,C',
                                  'single_depth', 'single_parsing', 'multitask', 'none', 'A',
                                  'B', 'C', 'nyuv2,single_parsing', 'cityscapes,B'])
def test_every_variant_builds_and_validates(spec, monkeypatch):
  c = load_config(f'configs/padnet.py:{spec}')
  if c.dataset.name not in SOURCES:  # real datasets arrive with the datasets work
    monkeypatch.setitem(SOURCES, c.dataset.name, None)
  config_checks.validate(c)
  flags = spec.split(',')
  tasks = {'single_depth': 'depth', 'single_parsing': 'parsing', 'multitask': 'depth_parsing'}
  for f in flags:
    if f in tasks:
      assert c.model.tasks == tasks[f]
    if f in ('A', 'B', 'C', 'none'):
      assert (c.model.tasks, c.model.distillation) == ('multitask', f)
  if 'nyuv2' in flags:
    assert (c.dataset.name, c.dataset.num_classes, c.model.depth) == ('nyuv2', 40, 50)
    assert c.model.features == 512 and c.evaluation.eigen_crop
  if 'cityscapes' in flags:
    assert (c.dataset.name, c.dataset.num_classes, c.model.depth) == ('cityscapes', 19, 101)


def test_unknown_variant_and_bad_fields():
  with pytest.raises(ValueError, match='unknown variant'):
    load_config('configs/padnet.py:smoke,D')
  for path, value in [('model.distillation', 'D'), ('model.gate_source', 'both'),
                      ('model.features', 18), ('loss.depth_kind', 'huber'),
                      ('evaluation.max_depth', 1e-4), ('loss.contour_pos_weight', 1.5)]:
    c = load_config('configs/padnet.py:smoke')
    set_field(c, path, value)
    with pytest.raises(config_checks.ConfigError, match=f'config.{path}='):
      config_checks.validate(c)
  c = load_config('configs/padnet.py:smoke,single_depth')
  c.loss.weights.depth = 0.0
  with pytest.raises(config_checks.ConfigError, match='config.loss.weights.depth='):
    config_checks.validate(c)

