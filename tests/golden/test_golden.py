"""jaxseg's ResNet, DeepLab v2, multi-level DeepLab and PAD-Net against the PyTorch references'
outputs stored in tests/golden/*.npz (written once by tests/golden/make_golden.py with torch), so
these equivalence checks run without torch. Float32 both sides with the same (float16-exact)
weights; relative errors ||jax - torch|| / ||torch|| < 1e-4, as tests/convert and tests/bench
require of the live comparisons."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from convert.convert_helpers import check_close
from jaxseg.backbones import ResNet
from jaxseg.config_files import load_config
from jaxseg.convert import convert_flat, flatten, load_into
from jaxseg.data import sources
from jaxseg.methods import build_method
from jaxseg.models.deeplabv2 import DeepLabV2

HERE = os.path.dirname(os.path.abspath(__file__))
WIDTH, CLASSES = 2, 5  # as make_golden.py
PADNET = dict(spec='configs/padnet.py:smoke,C', model=dict(width=4, features=8,
                                                            aggregate_features=4))

pytestmark = pytest.mark.usefixtures('fast_compile')


def golden(name):
  with np.load(os.path.join(HERE, name)) as z:
    return {k: z[k].astype(np.float32) if z[k].dtype == np.float16 else z[k] for k in z.files}


def group(g, prefix):
  return {k[len(prefix) + 1:]: v for k, v in g.items() if k.startswith(prefix + '/')}


def loaded(model, g, layout, prefix=None):
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), g['image'], train=False))
  zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  kwargs = {} if prefix is None else {'prefix': prefix}
  variables, report = load_into(zeros, group(g, 'state'), layout, **kwargs)
  assert not report.skipped_num_classes
  return variables


def run(model, variables, x, train):
  out, new = jax.jit(lambda v, x: model.apply(v, x, train=train, mutable=['batch_stats']))(
      variables, jnp.asarray(x))
  return jax.tree_util.tree_map(np.asarray, out), jax.tree_util.tree_map(np.asarray, new)


def check_running_stats(name, g, layout, new, strip=''):
  torch_stats = {k[len(strip):]: v for k, v in group(g, 'train_state').items()}
  want = {k: v for k, v in convert_flat(torch_stats, layout)[0].items()
          if k.startswith('batch_stats/')}
  got = {'batch_stats/' + k: v for k, v in flatten(new['batch_stats']).items()}
  assert sorted(got) == sorted(want)
  stack = lambda d: np.concatenate([d[k].ravel() for k in sorted(d)])
  check_close(f'{name} running stats', stack(got), stack(want))


@pytest.mark.parametrize('train', [False, True], ids=['eval', 'train'])
def test_resnet_equals_torch_reference(train):
  g = golden('resnet.npz')
  model = ResNet(depth=14, width=WIDTH, layout='pytorch', output_stride=32, pool_ceil_mode=False,
                 bn_mode='train')
  got, new = run(model, loaded(model, g, 'torchvision_resnet', prefix=''), g['image'], train)
  mode = 'train' if train else 'eval'
  for k in ('stem', 'layer1', 'layer2', 'layer3', 'layer4'):
    check_close(f'golden resnet {mode} {k}', got[k], g[f'{mode}/{k}'])
  if train:
    check_running_stats('golden resnet', g, 'torchvision_resnet', new)


@pytest.mark.parametrize('bn_mode,train,mode', [('frozen', False, 'eval'),
                                                ('train', True, 'train')])
def test_deeplabv2_equals_torch_reference(bn_mode, train, mode):
  g = golden('deeplabv2.npz')
  model = DeepLabV2(num_classes=CLASSES, depth=14, width=WIDTH, bn_mode=bn_mode)
  got, new = run(model, loaded(model, g, 'deeplabv2'), g['image'], train)
  check_close(f'golden deeplabv2 {mode} logits', got['logits'], g[f'{mode}/logits'])
  if train:
    check_running_stats('golden deeplabv2', g, 'deeplabv2', new, strip='Scale.')


def test_multilevel_deeplab_equals_torch_reference():
  g = golden('multilevel.npz')
  model = DeepLabV2(num_classes=CLASSES, depth=14, width=WIDTH, multi_level=True,
                    aspp_branches=2, bn_mode='frozen')
  got, _ = run(model, loaded(model, g, 'adaptsegnet_multi'), g['image'], False)
  check_close('golden multilevel logits', got['logits'], g['eval/logits'])
  check_close('golden multilevel aux_logits', got['aux_logits'], g['eval/aux_logits'])


def test_padnet_equals_torch_reference():
  g = golden('padnet.npz')
  c = load_config(PADNET['spec'])
  c.model.update(PADNET['model'])
  method = build_method(c, sources.make_source(c.dataset, 'train').meta)
  variables = traverse_util.unflatten_dict(
      {tuple(k.split('/')): v for k, v in group(g, 'variables').items()})
  batch = dict(group(g, 'batch'), image=g['image'])
  batch['label'] = batch['label'].astype(np.int32)
  batch['contours'] = batch['contours'].astype(np.float32)

  @jax.jit
  def outputs(variables, batch):
    ev = method.model.apply(variables, batch['image'], train=False)
    tr, _ = method.model.apply(variables, batch['image'], train=True, mutable=['batch_stats'])
    return ev, tr, method.loss(tr, batch)

  ev, tr, (loss, terms) = outputs(variables, batch)
  for mode, out in (('eval', ev), ('train', tr)):
    for key in ('logits', 'depth'):
      check_close(f'golden padnet {mode} {key}', out[key], g[f'{mode}/{key}'])
    for key, v in out['intermediate'].items():
      check_close(f'golden padnet {mode} intermediate {key}', v, g[f'{mode}/intermediate/{key}'])
  assert set(terms) == set(group(g, 'loss')) - {'total'} == set(c.loss.weights)
  for name, v in terms.items():
    assert float(v) == pytest.approx(float(g[f'loss/{name}']), rel=1e-4), name
  assert float(loss) == pytest.approx(float(g['loss/total']), rel=1e-4)
