"""Layout ``deeplab_pytorch`` (kazuto1011/deeplab-pytorch keys) and its MSC against PyTorch.

Key coverage needs no torch: a synthetic state dict with the exact key names of the released
ResNet-101 MSC model maps onto every jaxseg DeepLabV2 variable, none left over. With torch, a tiny
network with those names (tests/convert/torch_deeplab_pytorch.py) is converted and compared, alone
and wrapped in deeplab-pytorch's MSC, at odd sizes where s * H is not whole.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.convert import convert_flat, flatten, load_into
from jaxseg.models.deeplabv2 import DeepLabV2, MultiScaleInput

pytestmark = pytest.mark.usefixtures('fast_compile')
CLASSES = 5


def deeplab_pytorch_state(blocks=(3, 4, 23, 3), width=64, classes=21, prefix='base.'):
  """Zero arrays with deeplab-pytorch's key names and torch shapes (OIHW convs, (C,) BN)."""
  sd = {}

  def unit(name, cin, cout, k):
    sd[f'{prefix}{name}.conv.weight'] = np.zeros((cout, cin, k, k), np.float32)
    for leaf in ('weight', 'bias', 'running_mean', 'running_var'):
      sd[f'{prefix}{name}.bn.{leaf}'] = np.zeros(cout, np.float32)
    sd[f'{prefix}{name}.bn.num_batches_tracked'] = np.zeros((), np.int64)

  unit('layer1.conv1', 3, width, 7)
  cin = width
  for stage, n in zip(range(2, 6), blocks):
    cout = width * 2**stage
    for i in range(1, n + 1):
      block = f'layer{stage}.block{i}'
      unit(f'{block}.reduce', cin, cout // 4, 1)
      unit(f'{block}.conv3x3', cout // 4, cout // 4, 3)
      unit(f'{block}.increase', cout // 4, cout, 1)
      if i == 1:
        unit(f'{block}.shortcut', cin, cout, 1)
      cin = cout
  for i in range(4):
    sd[f'{prefix}aspp.c{i}.weight'] = np.zeros((classes, cin, 3, 3), np.float32)
    sd[f'{prefix}aspp.c{i}.bias'] = np.zeros(classes, np.float32)
  return sd


def model_shapes(model, size=33):
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)


def test_resnet101_msc_keys_cover_the_model():
  """Every key of the released DeepLabV2_ResNet101_MSC layout maps to a DeepLabV2 path (at
  width 8: the names are those of the width-64 model), shapes included; none is left over."""
  sd = deeplab_pytorch_state(width=8)
  assert len(sd) == 6 * (1 + 3 * 33 + 4) + 8 and 'base.layer5.block3.increase.bn.bias' in sd
  flat, ignored = convert_flat(sd, 'deeplab_pytorch')
  assert len(ignored) == 1 + 3 * 33 + 4 and all(k.endswith('num_batches_tracked') for k in ignored)
  shapes = model_shapes(DeepLabV2(num_classes=21, depth=101, width=8))
  want = flatten({c: shapes[c] for c in ('params', 'batch_stats')})
  assert sorted(flat) == sorted(want)
  for key, value in flat.items():
    assert value.shape == want[key].shape, key
  # Spot checks of the renaming (stage K -> layer{K-1}, block I -> _{I-1}, stride on reduce).
  assert flat['params/backbone/layer1_0/downsample_conv/kernel'].shape == (1, 1, 8, 32)
  assert flat['params/backbone/layer3_22/conv2/kernel'].shape == (3, 3, 32, 32)
  assert 'batch_stats/backbone/bn1/var' in flat and 'params/aspp/branch_3/bias' in flat
  # Without the MSC prefix (a bare DeepLabV2 state dict) the same paths come out.
  bare, _ = convert_flat(deeplab_pytorch_state(width=8, prefix=''), 'deeplab_pytorch')
  assert sorted(bare) == sorted(flat)


def test_other_dialects_are_not_accepted_and_the_layout_is_hinted():
  with pytest.raises(ValueError, match=r"1 key\(s\): \['layer1.0.conv1.weight'\]"):
    convert_flat({'layer1.0.conv1.weight': np.zeros((4, 4, 1, 1))}, 'deeplab_pytorch')
  with pytest.raises(ValueError, match='block0'):
    convert_flat({'layer2.block0.reduce.conv.weight': np.zeros((4, 4, 1, 1))},
                 'deeplab_pytorch')
  with pytest.raises(ValueError, match="these keys fit layout 'deeplab_pytorch'"):
    convert_flat(deeplab_pytorch_state(blocks=(1, 1, 1, 1), width=4), 'deeplabv2')


def test_load_into_msc_model_under_base():
  """A ``base.``-prefixed MSC file loads into MultiScaleInput(DeepLabV2) under ``base``."""
  model = MultiScaleInput(base=DeepLabV2(num_classes=7, depth=14, width=4))
  shapes = model_shapes(model)
  target = jax.tree_util.tree_map(lambda s: np.ones(s.shape, s.dtype), shapes)
  sd = deeplab_pytorch_state(blocks=(1, 1, 1, 1), width=4, classes=7)
  sd = {k: np.full(v.shape, 0.5, v.dtype) for k, v in sd.items()}
  loaded, report = load_into(target, sd, 'deeplab_pytorch', prefix='base')
  assert len(report.loaded) == len(flatten(shapes)) and not report.kept_init
  for value in flatten(loaded).values():
    np.testing.assert_array_equal(value, 0.5)


# -- numerical equivalence with PyTorch (tiny width, one bottleneck per stage) ------------------


@pytest.fixture(scope='module')
def torch_nets(tmp_path_factory):
  torch = pytest.importorskip('torch', reason='equivalence with a PyTorch reference network')
  from convert.torch_deeplab_pytorch import (  # pylint: disable=g-import-not-at-top
      DeepLabPytorchMSC, DeepLabPytorchV2)
  from jaxseg.bench.torch_resnet import randomize  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(1)
  msc = DeepLabPytorchMSC(randomize(DeepLabPytorchV2(CLASSES, width=8), seed=4)).eval()
  path = str(tmp_path_factory.mktemp('dlp') / 'deeplabv2_msc.pth')
  torch.save(msc.state_dict(), path)
  return torch, msc, path


def run_torch(torch, net, x):
  with torch.no_grad():
    return net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize('size', [65, 97])
def test_msc_equals_deeplab_pytorch(torch_nets, size):
  """Base logits and MSC (0.5, 0.75) logits equal the PyTorch reference at odd sizes with the
  default resize rule; the pre-issue-12 'size' rule does not (65 * 0.75, 97 * 0.5 not whole)."""
  from convert.convert_helpers import check_close, rel_err  # pylint: disable=g-import-not-at-top
  torch, msc, path = torch_nets
  x = np.random.default_rng(size).normal(size=(1, size, size, 3)).astype(np.float32)
  base = DeepLabV2(num_classes=CLASSES, depth=14, width=8, bn_mode='frozen')
  shapes = model_shapes(MultiScaleInput(base=base), size)
  variables, _ = load_into(jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes),
                           path, 'deeplab_pytorch', prefix='base')

  @jax.jit
  def run(variables, x):
    outs = {rule: MultiScaleInput(base=base, scales=(1.0, 0.5, 0.75), resize_rule=rule).apply(
        variables, x, train=False) for rule in ('pytorch_scale_factor', 'size')}
    return {rule: o['logits'] for rule, o in outs.items()}, outs['size']['scale_logits'][0]

  got, got_base = jax.device_get(run(variables, jnp.asarray(x)))
  want_base = run_torch(torch, msc.base, x)
  want = run_torch(torch, msc, x)
  check_close(f'deeplab_pytorch base {size}x{size}', got_base, want_base)
  check_close(f'deeplab_pytorch MSC {size}x{size}', got['pytorch_scale_factor'], want)
  assert rel_err(got['size'], want) > 1e-3
