"""The PyTorch references (jaxseg.bench.torch_*): which configs have one and why not, the same
parameter count, loss and outputs as jaxseg, one train step and one inference each."""
import jax
import numpy as np
import pytest

from bench.test_benchmark import smoke
from jaxseg import methods
from jaxseg.bench import torch_env, torch_refs
from jaxseg.config_files import load_config
from jaxseg.data import sources
from jaxseg.methods.padnet.loss import padnet_loss


def test_configs_without_a_reference_say_why():
  c = smoke()
  c.method = 'pspnet'
  assert "no PyTorch reference for method 'pspnet'" in torch_refs.supports(c)
  if not torch_env.available():
    assert torch_refs.supports(smoke()) == 'PyTorch is not installed'
    assert torch_refs.supports(padnet_smoke()) == 'PyTorch is not installed'
    with pytest.raises(ValueError, match='not installed'):
      torch_refs.from_config(smoke())
    return
  assert torch_refs.supports(smoke()) is None
  assert 'no multi-level head' in torch_refs.supports(smoke(multi_level=True))
  assert 'caffe layout at output stride 8' in torch_refs.supports(smoke(output_stride=16))
  c = smoke()
  c.method = 'padnet'
  assert "model 'deeplabv2' of method padnet" in torch_refs.supports(c)
  c = padnet_smoke()
  c.model.name = 'deeplabv2'
  assert "model 'deeplabv2' of method padnet" in torch_refs.supports(c)
  assert 'float32' in torch_refs.supports(padnet_smoke(dtype='bfloat16'))
  assert "distillation='D'" in torch_refs.supports(padnet_smoke(distillation='D'))
  c = padnet_smoke()
  c.optimizer.param_groups = ({'name': 'head', 'pattern': 'decoder', 'frozen': True},)
  assert 'frozen parameter groups' in torch_refs.supports(c)
  with pytest.raises(ValueError, match='frozen parameter groups'):
    torch_refs.from_config(c)


def test_torch_reference_has_the_jax_architecture():
  pytest.importorskip('torch')
  for msc in (False, True):
    c = smoke(msc=msc)
    assert torch_refs.supports(c) is None
    method = methods.build_method(c, sources.make_source(c.dataset, 'train').meta)
    variables = jax.eval_shape(lambda: method.model.init(
        jax.random.PRNGKey(0), np.zeros((1, 33, 33, 3), np.float32), train=False))
    n_jax = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables['params']))
    tb = torch_refs.from_config(c, 'train', num_classes=method.num_classes)
    assert tb.num_params == n_jax
    assert tb.step() > 0  # one train step: forward, (MSC) loss terms, backward, SGD update
    tb.what = 'predict'
    tb._set_mode()  # pylint: disable=protected-access
    assert tb.step() > 0


# -- PAD-Net ---------------------------------------------------------------------------------
def padnet_smoke(*variants, **model):
  """configs/padnet.py:smoke at 36x36 (not a multiple of 8: the final outputs are resized)."""
  c = load_config(','.join(['configs/padnet.py:smoke', *variants]))
  c.batch_size = 2
  c.dataset.augment.crop_size = (36, 36)
  for k, v in model.items():
    c.model[k] = v
  return c


def _padnet_method(c):
  return methods.build_method(c, sources.make_source(c.dataset, 'train').meta)


def _jax_param_count(model, size=(36, 36)):
  variables = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), np.zeros((1, *size, 3), np.float32), train=False))
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables['params']))


def test_torch_padnet_loss_equals_jax_for_every_kind():
  """torch_padnet_loss.padnet_loss == jaxseg padnet_loss on random outputs at 1/4 resolution,
  with masked pixels, ignored labels and invalid depth, for each loss kind and resize mode."""
  torch = pytest.importorskip('torch')
  from jaxseg.bench.torch_padnet_loss import padnet_loss as torch_padnet_loss  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  b, h, w, k = 2, 24, 20, 5
  f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)
  outputs = {'logits': f32(b, h, w, k), 'depth': f32(b, h, w) + 3,
             'intermediate': {'depth': f32(b, h // 4, w // 4) + 3,
                              'normals': f32(b, h // 4, w // 4, 3),
                              'parsing': f32(b, h // 4, w // 4, k),
                              'contours': f32(b, h // 4, w // 4)}}
  batch = {'depth': rng.uniform(0.5, 10, (b, h, w)).astype(np.float32),
           'label': rng.integers(0, k, (b, h, w)).astype(np.int32), 'normals': f32(b, h, w, 3),
           'contours': (rng.random((b, h, w)) < 0.2).astype(np.float32),
           'valid': rng.random((b, h, w)) < 0.9}
  batch['label'][0, :3] = 255
  batch['depth'][1, -2:] = 0.0
  batch['normals'][0, 5] = 0.0
  tt = lambda a: torch.from_numpy(np.ascontiguousarray(
      a.transpose(0, 3, 1, 2) if a.ndim == 4 else a))
  t_out = {key: tt(v) for key, v in outputs.items() if key != 'intermediate'}
  t_out['intermediate'] = {key: tt(v) for key, v in outputs['intermediate'].items()}
  t_batch = {key: tt(v) for key, v in batch.items()}
  t_batch['label'] = t_batch['label'].long()
  weights = {'depth': 1.0, 'parsing': 0.5, 'inter_depth': 0.8, 'inter_normals': 10.0,
             'inter_contours': 50.0, 'inter_parsing': 0.3}
  all_kinds = (dict(depth_kind='l1', normals_kind='cosine', contour_pos_weight=None,
                    resize='prediction'),
               dict(depth_kind='l2', normals_kind='l1', contour_pos_weight=0.95,
                    resize='target'),
               dict(depth_kind='l2', normals_kind='l2', contour_pos_weight=None,
                    resize='prediction', align_corners=True))
  jax_losses = jax.jit(lambda o, bt: [padnet_loss(o, bt, weights, **kw) for kw in all_kinds])(
      outputs, batch)  # one compilation (eager op-by-op compiles cost more)
  for kinds, (total, terms) in zip(all_kinds, jax_losses):
    t_total, t_terms = torch_padnet_loss(t_out, t_batch, weights, **kinds)
    for name in terms:
      assert float(t_terms[name]) == pytest.approx(float(terms[name]), rel=1e-5), (kinds, name)
    assert float(t_total) == pytest.approx(float(total), rel=1e-5), kinds


def test_torch_padnet_reference_has_the_jax_architecture():
  pytest.importorskip('torch')
  from jaxseg.bench.torch_padnet_bench import TorchPADNetBench  # pylint: disable=g-import-not-at-top
  method = _padnet_method(padnet_smoke())
  k = method.num_classes
  # C and none are stepped; the others (counts only) cover module A on branch features, the
  # source gate (module B's convs are a subset of it), and the direct multi-task variant on a
  # Caffe-layout, deep-stem, ceil-pooled, output-stride-16 front-end aggregating the stem.
  variants = [(('C',), {}), (('none',), {}), (('A',), dict(distill_input='features')),
              (('C',), dict(gate_source='source')),
              (('multitask',), dict(deep_stem=True, layout='caffe', pool_ceil_mode=True,
                                    output_stride=16, aggregate_layers=('stem', 'layer2')))]
  for flags, fields in variants:
    c = padnet_smoke(*flags, **fields)
    assert torch_refs.supports(c) is None, (flags, fields, torch_refs.supports(c))
    model = _padnet_method(c).model
    # C built for training, none for inference (as benchmark.compare builds them); each then
    # runs one train step (forward, the six loss terms, backward, Adam) and one inference.
    what = {('C',): 'train', ('none',): 'predict'}.get(flags) if not fields else None
    tb = torch_refs.from_config(c, what or 'train', num_classes=k)
    assert isinstance(tb, TorchPADNetBench)
    assert tb.num_params == _jax_param_count(model), (flags, fields)
    if what:
      assert isinstance(tb.optimizer, tb.torch.optim.Adam)
      for mode in (what, {'train': 'predict', 'predict': 'train'}[what]):
        tb.what = mode
        tb._set_mode()  # pylint: disable=protected-access
        assert tb.step() > 0


def test_torch_padnet_reference_computes_what_jax_computes():
  """JAX variables copied into the torch model: the same outputs (eval and train-mode BN) and
  the same loss terms, to 1e-4 relative. Distillation C with the target gate on re-embedded
  predictions (the default), 36x36 input (bilinear resizes in the front-end and at the end)."""
  torch = pytest.importorskip('torch')
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  from jaxseg.bench.torch_padnet import load_flax_variables  # pylint: disable=g-import-not-at-top
  from jaxseg.bench.torch_padnet_loss import padnet_loss as torch_padnet_loss  # pylint: disable=g-import-not-at-top
  c = padnet_smoke('C')
  method = _padnet_method(c)
  k = method.num_classes
  rng = np.random.default_rng(0)
  image = rng.normal(0, 1, (2, 36, 36, 3)).astype(np.float32)
  shapes = jax.eval_shape(lambda: method.model.init(jax.random.PRNGKey(0), image[:1],
                                                    train=False))
  flat = {}
  for path, s in traverse_util.flatten_dict(shapes).items():  # BN statistics not trivial
    if path[-1] == 'kernel':
      v = rng.normal(size=s.shape) * np.sqrt(2.0 / np.prod(s.shape[:-1]))
    elif path[-1] in ('scale', 'var'):
      v = rng.uniform(0.5, 1.5, s.shape)
    else:
      v = rng.normal(size=s.shape) * 0.1
    flat[path] = np.asarray(v, np.float32)
  variables = traverse_util.unflatten_dict(flat)
  batch = {'image': image,
           'depth': rng.uniform(0.5, 10, (2, 36, 36)).astype(np.float32),
           'label': rng.integers(0, k, (2, 36, 36)).astype(np.int32),
           'normals': rng.normal(size=(2, 36, 36, 3)).astype(np.float32),
           'contours': (rng.random((2, 36, 36)) < 0.1).astype(np.float32),
           'valid': np.ones((2, 36, 36), bool)}
  batch['label'][0, :4] = 255
  batch['valid'][1, :, :5] = False
  batch['depth'][0, -3:] = 0.0

  @jax.jit
  def jax_outputs(variables, batch):
    ev = method.model.apply(variables, batch['image'], train=False)
    tr, _ = method.model.apply(variables, batch['image'], train=True, mutable=['batch_stats'])
    return ev, tr, method.loss(tr, batch)

  ev, tr, (loss, terms) = jax_outputs(variables, batch)
  tb = torch_refs.from_config(c, 'train', num_classes=k)
  load_flax_variables(tb.model, variables)
  nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
  tbatch = {'depth': torch.from_numpy(batch['depth']), 'normals': nchw(batch['normals']),
            'label': torch.from_numpy(batch['label']).long(),
            'contours': torch.from_numpy(batch['contours']),
            'valid': torch.from_numpy(batch['valid'])}
  tb.model.eval()
  with torch.no_grad():
    t_ev = tb.model(nchw(image))
    tb.model.train()
    t_tr = tb.model(nchw(image))
    t_loss, t_terms = torch_padnet_loss(t_tr, tbatch, **tb.loss_kwargs)

  def close(name, j, t):
    j, t = np.asarray(j), t.numpy()
    j = j.transpose(0, 3, 1, 2) if j.ndim == 4 else j
    assert j.shape == t.shape, (name, j.shape, t.shape)
    err = np.abs(j - t).max() / np.abs(j).max()
    assert err < 1e-4, (name, err)

  for mode, j, t in (('eval', ev, t_ev), ('train', tr, t_tr)):
    for key in ('logits', 'depth'):
      close(f'{mode} {key}', j[key], t[key])
    for key in j['intermediate']:
      close(f'{mode} intermediate {key}', j['intermediate'][key], t['intermediate'][key])
  assert set(terms) == set(t_terms) == set(c.loss.weights)
  for name in terms:
    assert float(t_terms[name]) == pytest.approx(float(terms[name]), rel=1e-4), name
  assert float(t_loss) == pytest.approx(float(loss), rel=1e-4)
