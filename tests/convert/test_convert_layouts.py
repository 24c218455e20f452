"""Key layouts, load_into checks and the CLI (no torch needed)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from convert.convert_helpers import torch_state_from_flax, write_safetensors
from jaxseg.backbones import ResNet
from jaxseg.convert import convert, convert_flat, flatten, load_into, load_pretrained
from jaxseg.convert.__main__ import main as cli_main
from jaxseg.models.deeplabv2 import DeepLabV2

X = jnp.zeros((1, 33, 33, 3), jnp.float32)


def init(model, seed):
  """Random variables of the model's shapes (eval_shape: nothing is compiled)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), X, train=False))
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(lambda s: rng.normal(size=s.shape).astype(s.dtype), shapes)


def deeplab(num_classes=5, multi_level=False):
  return DeepLabV2(num_classes=num_classes, depth=14, width=4, multi_level=multi_level)


def assert_trees_equal(a, b):
  fa, fb = flatten(a), flatten(b)
  assert sorted(fa) == sorted(fb)
  for k in fa:
    np.testing.assert_array_equal(np.asarray(fa[k]), np.asarray(fb[k]), err_msg=k)


def test_torchvision_key_mapping():
  rng = np.random.default_rng(0)
  sd = {
      'conv1.weight': rng.normal(size=(8, 3, 7, 5)).astype(np.float32),
      'bn1.weight': np.ones(8), 'bn1.bias': np.zeros(8), 'bn1.running_mean': np.full(8, 2.0),
      'bn1.running_var': np.full(8, 3.0), 'bn1.num_batches_tracked': np.array(4),
      'layer2.0.downsample.0.weight': np.zeros((16, 8, 1, 1)),
      'layer2.0.downsample.1.running_var': np.ones(16),
      'layer4.2.bn3.weight': np.ones(4),
      'fc.weight': rng.normal(size=(10, 6)), 'fc.bias': np.arange(10.0),
  }
  flat, dropped = convert_flat(sd, 'torchvision_resnet')
  assert dropped == ['bn1.num_batches_tracked', 'fc.weight', 'fc.bias']
  np.testing.assert_array_equal(flat['params/conv1/kernel'],
                                sd['conv1.weight'].transpose(2, 3, 1, 0))
  assert flat['params/conv1/kernel'].shape == (7, 5, 3, 8)
  assert set(flat) == {
      'params/conv1/kernel', 'params/bn1/scale', 'params/bn1/bias', 'batch_stats/bn1/mean',
      'batch_stats/bn1/var', 'params/layer2_0/downsample_conv/kernel',
      'batch_stats/layer2_0/downsample_bn/var', 'params/layer4_2/bn3/scale'}
  np.testing.assert_array_equal(flat['batch_stats/bn1/var'], sd['bn1.running_var'])
  tree = convert(sd, 'torchvision_resnet', include_fc=True)
  np.testing.assert_array_equal(tree['params']['fc']['kernel'], sd['fc.weight'].T)
  np.testing.assert_array_equal(tree['params']['fc']['bias'], sd['fc.bias'])


def test_deeplab_keys_with_and_without_scale_prefix():
  sd = {'Scale.conv1.weight': np.zeros((4, 3, 7, 7)),
        'Scale.layer5.conv2d_list.3.weight': np.zeros((21, 16, 3, 3)),
        'Scale.layer5.conv2d_list.3.bias': np.zeros(21)}
  flat, _ = convert_flat(sd, 'deeplabv2')
  assert sorted(flat) == ['params/aspp/branch_3/bias', 'params/aspp/branch_3/kernel',
                          'params/backbone/conv1/kernel']
  bare, _ = convert_flat({k[len('Scale.'):]: v for k, v in sd.items()}, 'deeplabv2')
  assert sorted(bare) == sorted(flat)
  multi, _ = convert_flat({'layer5.conv2d_list.0.bias': np.zeros(3),
                           'layer6.conv2d_list.1.bias': np.zeros(3)}, 'adaptsegnet_multi')
  assert sorted(multi) == ['params/aspp/branch_1/bias', 'params/aspp_aux/branch_0/bias']


def test_unknown_keys_are_listed():
  with pytest.raises(ValueError, match=r"2 key\(s\): \['layer6.conv2d_list.0.weight', 'foo'\]"):
    convert_flat({'layer6.conv2d_list.0.weight': np.zeros((1, 1, 3, 3)), 'foo': np.zeros(1)},
                 'deeplabv2')
  with pytest.raises(ValueError, match='unknown layout'):
    convert_flat({}, 'caffe')


@pytest.mark.parametrize('multi_level,layout', [(False, 'deeplabv2'),
                                                (True, 'adaptsegnet_multi')])
def test_load_into_roundtrip(multi_level, layout):
  model = deeplab(multi_level=multi_level)
  source = init(model, 1)
  sd = torch_state_from_flax(source, layout, key_prefix='Scale.')
  loaded, report = load_into(init(model, 2), sd, layout)
  assert_trees_equal(loaded, source)
  assert len(report.loaded) == len(flatten(source)) and not report.skipped_num_classes


def test_load_into_torchvision_under_backbone_prefix():
  model = deeplab()
  backbone = ResNet(depth=14, width=4, layout='pytorch')
  bb = init(backbone, 3)
  sd = torch_state_from_flax(bb, 'torchvision_resnet')
  sd['fc.weight'], sd['fc.bias'] = np.zeros((10, 128)), np.zeros(10)
  loaded, report = load_into(init(model, 2), sd, 'torchvision_resnet', allow_missing=['aspp'])
  assert_trees_equal({c: loaded[c]['backbone'] for c in loaded}, bb)
  assert report.dropped == ['fc.weight', 'fc.bias'] and report.kept_init
  plain, _ = load_into(init(backbone, 4), sd, 'torchvision_resnet', prefix='')
  assert_trees_equal(plain, bb)


def test_class_count_mismatch_is_skipped_and_reported():
  file_vars = init(deeplab(num_classes=21), 1)
  target = init(deeplab(num_classes=19), 2)
  sd = torch_state_from_flax(file_vars, 'deeplabv2', key_prefix='Scale.')
  loaded, report = load_into(target, sd, 'deeplabv2')
  skipped = {k for k, _, _ in report.skipped_num_classes}
  assert skipped == {f'params/aspp/branch_{i}/{n}' for i in range(4) for n in ('kernel', 'bias')}
  assert report.skipped_num_classes[0][1][-1] == 21
  np.testing.assert_array_equal(loaded['params']['aspp']['branch_0']['kernel'],
                                target['params']['aspp']['branch_0']['kernel'])
  np.testing.assert_array_equal(loaded['params']['backbone']['conv1']['kernel'],
                                file_vars['params']['backbone']['conv1']['kernel'])
  assert 'class count' in str(report)


def test_adaptsegnet_init_recipe():
  """AdaptSegNet: DeepLab init file (21-class layer5) into the 19-class two-level model."""
  sd = torch_state_from_flax(init(deeplab(num_classes=21), 1), 'deeplabv2', key_prefix='Scale.')
  target = init(deeplab(num_classes=19, multi_level=True), 2)
  with pytest.raises(ValueError, match='aspp_aux'):
    load_into(target, sd, 'deeplabv2')
  _, report = load_into(target, sd, 'deeplabv2', allow_missing=['aspp_aux'])
  assert len(report.skipped_num_classes) == 8 and len(report.kept_init) == 8


def test_errors_list_missing_wrong_and_unexpected():
  model = deeplab()
  sd = torch_state_from_flax(init(model, 1), 'deeplabv2')
  del sd['layer1.0.bn2.running_var'], sd['conv1.weight']
  sd['layer2.0.conv2.weight'] = np.zeros((8, 8, 1, 1), np.float32)
  sd['layer4.1.conv1.weight'] = np.zeros((4, 4, 1, 1), np.float32)
  with pytest.raises(ValueError) as info:
    load_into(init(model, 2), sd, 'deeplabv2')
  msg = str(info.value)
  assert 'missing from the file (2)' in msg and 'batch_stats/backbone/layer1_0/bn2/var' in msg
  assert 'params/backbone/conv1/kernel' in msg
  assert 'wrong shape (1)' in msg and 'layer2_0/conv2/kernel: file (1, 1, 8, 8) model (3, 3, 8, 8)' \
      in msg
  assert 'not in the model (1)' in msg and 'params/backbone/layer4_1/conv1/kernel' in msg


def test_cli_writes_npz_and_load_pretrained_reads_both(tmp_path, capsys):
  model = deeplab()
  source = init(model, 1)
  sd = torch_state_from_flax(source, 'deeplabv2', key_prefix='Scale.')
  sd['Scale.bn1.num_batches_tracked'] = np.array(3)
  src = str(tmp_path / 'init.npz')
  np.savez(src, **sd)
  outdir = str(tmp_path / 'out')
  assert cli_main(['--layout=deeplabv2', src, outdir]) == 0
  printed = capsys.readouterr().out
  assert 'weights.npz' in printed and 'num_batches_tracked' in printed
  from_dir = load_pretrained(outdir, 'deeplabv2')
  from_src = load_pretrained(src, 'deeplabv2')
  assert sorted(from_dir) == sorted(from_src)
  for k in from_src:
    np.testing.assert_array_equal(from_dir[k], from_src[k])
  loaded, _ = load_into(init(model, 2), outdir + '/weights.npz', 'deeplabv2')
  assert_trees_equal(loaded, source)


def test_plain_safetensors_of_flax_paths(tmp_path):
  """Layout 'plain': '/'-joined Flax paths; without a collection, mean/var go to batch_stats."""
  model = deeplab()
  source = init(model, 1)
  flat = {k.split('/', 1)[1]: v for k, v in flatten(source).items()}  # drop the collection
  path = str(tmp_path / 'w.safetensors')
  write_safetensors(path, flat)
  loaded, _ = load_into(init(model, 2), path, 'plain')
  assert_trees_equal(loaded, source)


def test_cli_errors_are_short_and_hint_the_layout(tmp_path, capsys):
  sd = torch_state_from_flax(init(deeplab(), 1), 'deeplabv2', key_prefix='Scale.')
  src = str(tmp_path / 'init.npz')
  np.savez(src, **sd)
  assert cli_main(['--layout=torchvision_resnet', src, str(tmp_path / 'out')]) == 2
  err = capsys.readouterr().err
  assert err.startswith('error: ') and "fit layout 'deeplabv2'" in err
  assert cli_main(['--layout=deeplabv2', str(tmp_path / 'absent.pth'), str(tmp_path)]) == 2
  assert 'absent.pth' in capsys.readouterr().err
