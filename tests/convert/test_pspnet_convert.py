"""PSPNet weight layouts (semseg / mmseg): key coverage, and forward equivalence with a PyTorch
reference (tests/convert/torch_pspnet.py) to 1e-4, live with torch and from committed goldens
(data/pspnet_golden.npz, made by make_pspnet_goldens.py) without it.

Tiny nets (one bottleneck per stage, width 8, 33x33 inputs: 5x5 features, so the 2/3/6 bins of
PyTorch's adaptive pooling overlap) with NumPy-seeded weights and random BN statistics.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from convert import pspnet_fixtures as fx
from convert.convert_helpers import check_close
from jaxseg.convert import convert_flat, flatten, load_into

pytestmark = pytest.mark.usefixtures('fast_compile')


def _shapes(model):
  x = jnp.zeros((1, fx.SIZE, fx.SIZE, 3))
  return flatten(dict(jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))))


@pytest.mark.parametrize('variant', ['semseg', 'mmseg'])
def test_whole_model_layout_covers_every_variable(variant):
  model = fx.flax_model(variant)
  sd = fx.state_dict(variant, model)
  sd[next(k for k in sd if k.endswith('running_var')).replace('running_var',
                                                             'num_batches_tracked')] = np.int64(3)
  flat, ignored = convert_flat(sd, fx.LAYOUT[variant])
  want = _shapes(model)
  assert sorted(flat) == sorted(want)
  assert all(flat[k].shape == want[k].shape for k in want)
  assert len(ignored) == 1 and ignored[0].endswith('num_batches_tracked')


@pytest.mark.parametrize('layout,stem', [('semseg_resnet', 'conv1.weight'),
                                         ('mmseg_resnetv1c', 'stem.0.weight')])
def test_imagenet_backbone_layouts(layout, stem):
  """The ImageNet inits: semseg's resnet*_v2.pth names the stem conv1..3 / bn1..3, mmcv's
  ResNetV1c stem.N (no backbone. prefix); both carry an fc that is dropped."""
  variant = 'semseg' if layout.startswith('semseg') else 'mmseg'
  model = fx.flax_model(variant)
  sd = {k: v for k, v in fx.state_dict(variant, model).items()
        if k.startswith(('layer', 'backbone.'))}
  if variant == 'semseg':
    names = {'0': 'conv1', '1': 'bn1', '3': 'conv2', '4': 'bn2', '6': 'conv3', '7': 'bn3'}
    sd = {(names[k[7]] + k[8:] if k.startswith('layer0.') else k): v for k, v in sd.items()}
  else:
    sd = {k[len('backbone.'):]: v for k, v in sd.items()}
  sd['fc.weight'], sd['fc.bias'] = np.zeros((7, 256), np.float32), np.zeros(7, np.float32)
  assert stem in sd
  flat, ignored = convert_flat(sd, layout)
  want = {k.replace('/backbone/', '/', 1): v for k, v in _shapes(model).items()
          if k.split('/')[1] == 'backbone'}
  assert sorted(flat) == sorted(want) and sorted(ignored) == ['fc.bias', 'fc.weight']


def _jax_outputs(variant, sd, x, train):
  model = fx.flax_model(variant)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.asarray(x), train=False))
  zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  variables, report = load_into(zeros, sd, fx.LAYOUT[variant])
  assert not report.skipped_num_classes and not report.kept_init
  fn = jax.jit(lambda v, x: model.apply(v, x, train=train, mutable=['batch_stats']))
  out, new = fn(variables, jnp.asarray(x))
  return jax.tree_util.tree_map(np.asarray, out), flatten(dict(new))


@pytest.fixture(scope='module')
def golden():
  with np.load(fx.GOLDEN_PATH) as f:
    return dict(f)


@pytest.mark.parametrize('variant', ['semseg', 'mmseg'])
def test_golden_forward(golden, variant):
  """Converted weights reproduce the reference's eval logits, train logits / aux logits (batch
  statistics) and updated running statistics."""
  sd = fx.state_dict(variant, fx.flax_model(variant))
  x = fx.image()
  out, _ = _jax_outputs(variant, sd, x, train=False)
  assert set(out) == {'logits'}
  check_close(f'pspnet {variant} eval logits', out['logits'], golden[f'{variant}/logits'])
  out, new = _jax_outputs(variant, sd, x, train=True)
  check_close(f'pspnet {variant} train logits', out['logits'], golden[f'{variant}/train_logits'])
  check_close(f'pspnet {variant} train aux logits', out['aux_logits'],
              golden[f'{variant}/train_aux_logits'])
  prefix = f'{variant}/running/'
  running = {k[len(prefix):]: v for k, v in golden.items() if k.startswith(prefix)}
  if variant == 'mmseg':
    running = fx.to_mmseg_keys(running)
  want, _ = convert_flat(running, fx.LAYOUT[variant])
  got = new  # flat 'batch_stats/...' paths
  assert sorted(got) == sorted(want)
  stack = lambda d: np.concatenate([np.ravel(d[k]) for k in sorted(d)])
  check_close(f'pspnet {variant} running stats', stack(got), stack(want))


def test_live_torch_reference_matches_goldens_and_jax(golden):
  """With torch: the reference reproduces the committed goldens, and jaxseg matches it live on
  a second input size (41: 6x6 features, equal disjoint bins)."""
  pytest.importorskip('torch', reason='the live check runs the PyTorch reference')
  from convert.make_pspnet_goldens import torch_outputs  # pylint: disable=g-import-not-at-top
  out, _ = torch_outputs('semseg', fx.image(), train=False)
  np.testing.assert_allclose(out['logits'], golden['semseg/logits'], rtol=1e-5, atol=1e-5)
  x = fx.image(41, seed=3)
  want, _ = torch_outputs('semseg', x, train=False)
  got, _ = _jax_outputs('semseg', fx.state_dict('semseg', fx.flax_model('semseg')), x, False)
  check_close('pspnet semseg eval logits 41x41 (live)', got['logits'], want['logits'])
