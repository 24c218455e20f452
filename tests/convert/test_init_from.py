"""`config.init_from`: `Method.load_pretrained` and `python -m jaxseg.main --config.init_from=...`.

A tiny DeepLab v2 state_dict (one bottleneck per stage, width 8, `Scale.`-prefixed torch key
names, a 21-class ASPP, random values) is saved as .npz (and, where torch is installed, with
`torch.save`) and converted with the CLI; the segmentation method of
`configs/deeplabv2.py:smoke` (7 synthetic classes, MSC on and off) must put every backbone array
exactly where it belongs and keep its own 7-class ASPP, reporting the skip. The in-process tests
build states with `jax.eval_shape` (nothing compiles); only the end-to-end run compiles. Only the
.pth cases need torch; the rest run without it.
"""
import os

import jax
import numpy as np
import pytest

from conftest import run_module
from convert.convert_helpers import torch_state_from_flax
from jaxseg import methods
from jaxseg.runner import config_checks
from jaxseg.config_files import load_config
from jaxseg.configlib import set_field
from jaxseg.convert import convert_flat, flatten
from jaxseg.backbones import ResNet
from jaxseg.data import sources
from jaxseg.models.deeplabv2 import DeepLabV2

try:
  import torch  # pylint: disable=g-import-not-at-top
except ImportError:
  torch = None
needs_torch = pytest.mark.skipif(torch is None, reason='writes a .pth with torch.save')
FILE_CLASSES = 21
ASPP_KEYS = [f'aspp/branch_{i}/{leaf}' for i in range(4) for leaf in ('kernel', 'bias')]


def smoke_config(**overrides):
  config = load_config('configs/deeplabv2.py:smoke')
  for path, value in overrides.items():
    set_field(config, path, value)
  return config


def run(module, *args, timeout=600):
  return run_module(module, *args, timeout=timeout)


def random_torch_state(model, seed, key_prefix='', layout='deeplabv2'):
  """A torch-named state_dict (NumPy) of `model`'s shapes with random values (BN var > 0)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                             np.zeros((1, 33, 33, 3), np.float32), train=False))
  rng = np.random.default_rng(seed)
  fill = lambda path, s: np.asarray(
      rng.uniform(0.5, 1.5, s.shape) if path[-1].key == 'var' else rng.normal(size=s.shape),
      s.dtype)
  return torch_state_from_flax(jax.tree_util.tree_map_with_path(fill, shapes), layout, key_prefix)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
  """(state_dict as NumPy, .pth path or None without torch, converter OUTDIR) of a 21-class
  DeepLab v2."""
  tmp = tmp_path_factory.mktemp('init_from')
  state = random_torch_state(DeepLabV2(FILE_CLASSES, depth=14, width=8), 3, 'Scale.')
  assert all(k.startswith('Scale.') for k in state) and 'Scale.layer5.conv2d_list.3.weight' in state
  npz = str(tmp / 'DeepLab_tiny_init.npz')
  np.savez(npz, **state)
  pth = None
  if torch is not None:
    pth = str(tmp / 'DeepLab_tiny_init.pth')
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)
  outdir = str(tmp / 'converted')
  out = run('jaxseg.convert', '--from=npz', '--layout=deeplabv2', npz, outdir + '/', timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert os.path.isfile(os.path.join(outdir, 'weights.npz')), out.stdout
  return state, pth, outdir


def random_state(method, batch, seed=0):
  """A TrainState of the method's structure (via eval_shape) with random params/batch_stats."""
  shapes = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), batch)
  rng = np.random.default_rng(seed)
  fill = lambda s: np.asarray(rng.normal(size=s.shape), s.dtype)
  zeros = lambda s: np.zeros(s.shape, s.dtype)
  return jax.device_put(shapes.replace(
      step=zeros(shapes.step), rng=zeros(shapes.rng),
      params=jax.tree.map(fill, shapes.params), batch_stats=jax.tree.map(fill, shapes.batch_stats),
      opt_state=jax.tree.map(zeros, shapes.opt_state)))


@pytest.fixture(scope='module', params=[True, False], ids=['msc', 'no_msc'])
def method_and_state(request):
  config = smoke_config(**{'model.msc': request.param})
  meta = sources.make_source(config.dataset, 'train').meta
  assert meta['num_classes'] == 7
  method = methods.build_method(config, meta)
  batch = {'image': np.zeros((1, 33, 33, 3), np.float32)}
  return method, random_state(method, batch), ('base' if request.param else '')


def subtree(tree, root):
  return tree[root] if root else tree


def check_loaded(before, after, torch_state, root):
  """Backbone arrays equal the converted file exactly; the 7-class ASPP keeps its init."""
  assert jax.tree.structure(after) == jax.tree.structure(before)
  for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before)):
    assert np.shape(a) == np.shape(b) and a.dtype == b.dtype and a.sharding == b.sharding
  want, _ = convert_flat(torch_state, 'deeplabv2')
  got = {f'{c}/{k}': np.asarray(v) for c in ('params', 'batch_stats')
         for k, v in flatten(subtree(getattr(after, c), root)).items()}
  init = {f'{c}/{k}': np.asarray(v) for c in ('params', 'batch_stats')
          for k, v in flatten(subtree(getattr(before, c), root)).items()}
  backbone = [k for k in want if k.split('/')[1] == 'backbone']
  assert len(backbone) == len([k for k in got if k.split('/')[1] == 'backbone']) > 50
  for key in backbone:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert not np.array_equal(got[key], init[key]), key
  for key in ASPP_KEYS:
    np.testing.assert_array_equal(got[f'params/{key}'], init[f'params/{key}'], err_msg=key)
  assert got['params/aspp/branch_0/kernel'].shape[-1] == 7


def check_report(method, capsys, root):
  report = method.pretrained_report
  skipped = sorted(k for k, _, _ in report.skipped_num_classes)
  prefix = f'params/{root}/' if root else 'params/'
  assert skipped == sorted(prefix + k for k in ASPP_KEYS)
  for key, got, want in report.skipped_num_classes:
    assert got[-1] == FILE_CLASSES and want[-1] == 7, (key, got, want)
  printed = capsys.readouterr().out
  assert 'skipped (class count differs)' in printed
  assert f'{prefix}aspp/branch_0/kernel file (3, 3, 256, 21) model (3, 3, 256, 7)' in printed


@pytest.mark.parametrize('source', ['outdir', 'npz', pytest.param('pth', marks=needs_torch)])
def test_load_pretrained_places_backbone_and_skips_aspp(weights, method_and_state, source,
                                                        capsys):
  torch_state, pth, outdir = weights
  method, state, root = method_and_state
  path = {'outdir': outdir + '/', 'npz': os.path.join(outdir, 'weights.npz'), 'pth': pth}[source]
  new = method.load_pretrained(state, path)
  check_loaded(state, new, torch_state, root)
  assert new.opt_state is state.opt_state and new.step is state.step
  check_report(method, capsys, root)


def test_wrong_shape_and_missing_keys_raise(weights, method_and_state, tmp_path):
  torch_state, _, _ = weights
  method, state, root = method_and_state
  bad = dict(torch_state)
  bad['Scale.layer2.0.conv2.weight'] = np.zeros((16, 16, 5, 5), np.float32)  # model: 3x3
  del bad['Scale.layer3.0.bn1.running_var']
  path = str(tmp_path / 'bad.npz')
  np.savez(path, **bad)
  with pytest.raises(ValueError) as e:
    method.load_pretrained(state, path)
  where = f'{root}/' if root else ''
  message = str(e.value)
  assert f'params/{where}backbone/layer2_0/conv2/kernel: file (5, 5, 16, 16)' in message
  assert 'wrong shape (1)' in message and 'missing from the file (1)' in message
  assert f'batch_stats/{where}backbone/layer3_0/bn1/var' in message
  assert 'config.init_from' in message and path in message


def test_backbone_only_layout_keeps_heads(method_and_state, tmp_path, capsys):
  """An ImageNet ResNet (torchvision layout, with fc) loads the backbone; ASPP keeps its init."""
  method, state, root = method_and_state
  state_dict = random_torch_state(ResNet(depth=14, width=8, layout='pytorch'), 5,
                                  layout='torchvision_resnet')
  state_dict['fc.weight'] = np.ones((10, 8 * 8 * 4), np.float32)
  state_dict['fc.bias'] = np.zeros((10,), np.float32)
  path = str(tmp_path / 'resnet.npz')
  np.savez(path, **state_dict)
  method.config.init_layout = 'torchvision_resnet'
  try:
    new = method.load_pretrained(state, path)
  finally:
    method.config.init_layout = 'deeplabv2'
  want = convert_flat(state_dict, 'torchvision_resnet')[0]
  got = flatten(subtree(new.params, root))
  np.testing.assert_array_equal(got['backbone/layer4_0/conv3/kernel'],
                                want['params/layer4_0/conv3/kernel'])
  np.testing.assert_array_equal(got['aspp/branch_1/kernel'],
                                flatten(subtree(state.params, root))['aspp/branch_1/kernel'])
  assert method.pretrained_report.kept_init and 'fc.weight' in method.pretrained_report.dropped
  assert 'kept initialisation' in capsys.readouterr().out


def test_flax_paths_saved_with_the_wrapper_load_too(method_and_state, tmp_path):
  """A plain .npz of the model's own variables (already under base/ for MSC) round-trips."""
  method, state, root = method_and_state
  if not root:
    pytest.skip('only the MSC model has a wrapper')
  flat = {f'{c}/{k}': np.asarray(v) + 1 for c in ('params', 'batch_stats')
          for k, v in flatten(getattr(state, c)).items()}
  path = str(tmp_path / 'own.npz')
  np.savez(path, **flat)
  new = method.load_pretrained(state, path)
  np.testing.assert_array_equal(flatten(new.params)['base/aspp/branch_0/bias'],
                                flat['params/base/aspp/branch_0/bias'])


def test_config_checks_init_fields(weights, tmp_path):
  _, pth, outdir = weights
  for good in [p for p in (pth, outdir, os.path.join(outdir, 'weights.npz')) if p]:
    config_checks.validate(smoke_config(init_from=good))
  with pytest.raises(config_checks.ConfigError, match=r"config\.init_from='/nonexistent'"):
    config_checks.validate(smoke_config(init_from='/nonexistent'))
  with pytest.raises(config_checks.ConfigError, match=r'config\.init_from=.*weights\.npz'):
    config_checks.validate(smoke_config(init_from=str(tmp_path)))
  with pytest.raises(config_checks.ConfigError, match=r"config\.init_layout='caffe'"):
    config_checks.validate(smoke_config(init_layout='caffe'))


def test_main_init_from_end_to_end(weights, tmp_path):
  _, _, outdir = weights
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/deeplabv2.py:smoke', f'--workdir={workdir}',
            '--config.num_train_steps=1', '--config.dataset.num_val=2']
  out = run('jaxseg.main', *common, f'--config.init_from={outdir}/')
  assert out.returncode == 0, out.stderr[-3000:]
  assert f'init_from {outdir}/ (layout deeplabv2, under base/)' in out.stdout, out.stdout
  assert 'skipped (class count differs): params/base/aspp/branch_0/kernel' in out.stdout
  assert 'mIoU' in out.stdout
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1']

  bad = run('jaxseg.main', '--config=configs/deeplabv2.py:smoke', f'--workdir={tmp_path / "bad"}',
            '--config.init_from=/nonexistent', timeout=300)
  assert bad.returncode != 0
  assert "config.init_from='/nonexistent'" in bad.stderr, bad.stderr[-3000:]
  assert 'first step done' not in bad.stdout
  assert not os.path.exists(tmp_path / 'bad' / 'checkpoints')
