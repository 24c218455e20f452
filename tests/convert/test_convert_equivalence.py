"""jaxseg forward passes with converted weights equal the PyTorch reference nets (float32).

Per layout: a random tiny reference (one bottleneck per stage, width 8, random BN statistics and
affine) is saved with ``torch.save``, converted, loaded into the jaxseg model, and both nets run on
the same random input of 65x65 (odd) and 64x64 (even: ceil-mode pooling differs) pixels, in
inference and in training mode. Relative errors are ||jax - torch|| / ||torch||, required < 1e-4.
"""
import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip('torch', reason='equivalence tests compare with a PyTorch reference')

# pylint: disable=g-import-not-at-top,wrong-import-position
from convert.convert_helpers import check_close, rel_err
from jaxseg.bench.torch_resnet import MSDeepLab, TorchDeepLabV2, TorchResNet, randomize
from jaxseg.backbones import ResNet
from jaxseg.convert import convert_flat, flatten, load_into, load_pretrained
from jaxseg.convert.__main__ import main as cli_main
from jaxseg.models.deeplabv2 import DeepLabV2
from jaxseg.nn import resize_bilinear

torch.set_num_threads(1)
SIZES = (65, 64)
WIDTH, BATCH, CLASSES = 8, 2, 5


def image(size, seed=0):
  return np.random.default_rng(seed).normal(size=(BATCH, size, size, 3)).astype(np.float32)


def zeros_like_init(model, x):
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
  return jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def run_torch(net, x, train):
  """(outputs as NHWC / (N, C) NumPy, state_dict after the pass as NumPy)."""
  net = copy.deepcopy(net).train(train)
  with torch.no_grad():
    out = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
  out = {k: v.numpy().transpose(0, 2, 3, 1) if v.ndim == 4 else v.numpy() for k, v in out.items()}
  return out, {k: v.numpy() for k, v in net.state_dict().items()}


def run_jax(model, variables, x, train):
  fn = jax.jit(lambda v, x: model.apply(v, x, train=train, mutable=['batch_stats']))
  out, new = fn(variables, jnp.asarray(x))
  return jax.tree_util.tree_map(np.asarray, out), jax.tree_util.tree_map(np.asarray, new)


def check_running_stats(name, torch_state, layout, new_vars, prefix=''):
  """Updated running statistics (torch after a train pass) vs jaxseg's updated batch_stats."""
  want = {k: v for k, v in convert_flat(torch_state, layout)[0].items()
          if k.startswith('batch_stats/')}
  got = {('batch_stats/' + prefix + '/' + k).replace('//', '/'): v
         for k, v in flatten(new_vars['batch_stats']).items()}
  assert sorted(got) == sorted(want)
  stacked = lambda d: np.concatenate([d[k].ravel() for k in sorted(d)])
  check_close(f'{name} running stats', stacked(got), stacked(want))


@pytest.fixture(scope='module')
def torchvision_file(tmp_path_factory):
  net = randomize(TorchResNet(width=WIDTH, layout='pytorch', num_fc=7), seed=1)
  path = str(tmp_path_factory.mktemp('tv') / 'resnet.pth')
  torch.save(net.state_dict(), path)
  return net, path


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('train', [False, True], ids=['eval', 'train'])
def test_torchvision_resnet(torchvision_file, size, train):
  net, path = torchvision_file
  x = image(size)
  model = ResNet(depth=14, width=WIDTH, layout='pytorch', output_stride=32,
                 pool_ceil_mode=False, bn_mode='train')
  variables, report = load_into(zeros_like_init(model, x), path, 'torchvision_resnet', prefix='')
  assert 'fc.weight' in report.dropped
  want, state = run_torch(net, x, train)
  got, new = run_jax(model, variables, x, train)
  name = f'torchvision_resnet {"train" if train else "eval"} {size}x{size}'
  for k in ('stem', 'layer1', 'layer2', 'layer3', 'layer4'):
    check_close(f'{name} {k}', got[k], want[k])
  fc = load_pretrained(path, 'torchvision_resnet', prefix='', include_fc=True)
  logits = got['layer4'].mean(axis=(1, 2)) @ fc['params/fc/kernel'] + fc['params/fc/bias']
  check_close(f'{name} fc', logits, want['fc'])
  if train:
    check_running_stats(name, state, 'torchvision_resnet', new)


@pytest.fixture(scope='module')
def deeplab_file(tmp_path_factory):
  """Scale.-prefixed DeepLab v2 file, converted by the CLI; tests load from its OUTDIR."""
  net = randomize(MSDeepLab(TorchDeepLabV2(num_classes=CLASSES, width=WIDTH)), seed=2)
  tmp = tmp_path_factory.mktemp('dl')
  path, outdir = str(tmp / 'init.pth'), str(tmp / 'converted')
  torch.save(net.state_dict(), path)
  assert cli_main(['--from=torch', '--layout=deeplabv2', path, outdir]) == 0
  direct, converted = load_pretrained(path, 'deeplabv2'), load_pretrained(outdir, 'deeplabv2')
  assert sorted(direct) == sorted(converted)
  for k in direct:
    np.testing.assert_array_equal(direct[k], converted[k])
  return net, outdir


def test_stride_placement_mismatch_is_detected(deeplab_file):
  """Sanity check of the comparison: caffe weights in a pytorch-layout model differ clearly."""
  net, outdir = deeplab_file
  x = image(64, seed=1)
  model = DeepLabV2(num_classes=CLASSES, depth=14, width=WIDTH, layout='pytorch')
  variables, _ = load_into(zeros_like_init(model, x), outdir, 'deeplabv2')
  got, _ = run_jax(model, variables, x, False)
  want, _ = run_torch(net, x, False)
  assert got['logits'].shape == want['logits'].shape
  assert rel_err(got['logits'], want['logits']) > 1e-2


DEEPLAB_MODES = [  # (jaxseg bn_mode, jaxseg train, torch train)
    ('frozen', False, False), ('frozen', True, False), ('train', True, True)]


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('bn_mode,train,torch_train', DEEPLAB_MODES,
                         ids=['frozen-eval', 'frozen-train', 'train-train'])
def test_deeplabv2(deeplab_file, size, bn_mode, train, torch_train):
  net, outdir = deeplab_file
  x = image(size, seed=1)
  model = DeepLabV2(num_classes=CLASSES, depth=14, width=WIDTH, bn_mode=bn_mode)
  variables, _ = load_into(zeros_like_init(model, x), outdir, 'deeplabv2')
  want, state = run_torch(net, x, torch_train)
  got, new = run_jax(model, variables, x, train)
  name = f'deeplabv2 bn={bn_mode} train={train} {size}x{size}'
  check_close(f'{name} logits', got['logits'], want['logits'])
  up = np.asarray(resize_bilinear(jnp.asarray(got['logits']), (size, size), align_corners=True))
  check_close(f'{name} upsampled(align_corners)', up, want['upsampled'])
  if torch_train:
    state = {k[len('Scale.'):]: v for k, v in state.items()}
    check_running_stats(name, state, 'deeplabv2', new)


@pytest.fixture(scope='module')
def adaptsegnet_file(tmp_path_factory):
  """Two-level file without prefix (like the released multi-level checkpoints)."""
  net = randomize(TorchDeepLabV2(num_classes=CLASSES, width=WIDTH, multi_level=True,
                                 aspp_branches=2), seed=3)
  path = str(tmp_path_factory.mktemp('asn') / 'multi.pth')
  torch.save(net.state_dict(), path)
  return net, path


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('train', [False, True], ids=['eval', 'train'])
def test_adaptsegnet_multi(adaptsegnet_file, size, train):
  net, path = adaptsegnet_file
  x = image(size, seed=2)
  model = DeepLabV2(num_classes=CLASSES, depth=14, width=WIDTH, multi_level=True,
                    aspp_branches=2, bn_mode='frozen_affine')
  variables, _ = load_into(zeros_like_init(model, x), path, 'adaptsegnet_multi',
                           use_torch=False)  # the torch-free reader
  want, state = run_torch(net, x, train)
  got, new = run_jax(model, variables, x, train)
  name = f'adaptsegnet_multi bn=frozen_affine train={train} {size}x{size}'
  check_close(f'{name} logits', got['logits'], want['logits'])
  check_close(f'{name} aux_logits', got['aux_logits'], want['aux_logits'])
  if train:
    check_running_stats(name, state, 'adaptsegnet_multi', new)
