"""NumPy-only PSPNet fixtures: tiny model settings, seeded semseg / mmseg state_dicts, inputs.

The weights are drawn with NumPy from a seed (no torch needed), named as hszhao/semseg names
them (``flax_to_semseg``, the test-side inverse of the ``semseg_pspnet`` layout), so the golden
test rebuilds them where torch is absent; ``make_pspnet_goldens.py`` feeds the same arrays to
the PyTorch reference (``load_state_dict(strict=True)`` checks every name) and stores its outputs.
"""
import os
import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.convert import flatten
from jaxseg.methods.pspnet.model import PSPNet

GOLDEN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                           'pspnet_golden.npz')
CLASSES, BATCH, SIZE = 5, 2, 33
# Shared by the Flax model and the torch reference (their field names are the same).
COMMON = dict(width=8, head_features=16, aux_features=8, dropout=0.0)
VARIANTS = {
    'semseg': dict(COMMON, align_corners=True),
    'mmseg': dict(COMMON, stem_width=4, contract_dilation=True, ppm_features=8,
                  align_corners=False),
}
LAYOUT = {'semseg': 'semseg_pspnet', 'mmseg': 'mmseg_pspnet'}
_STEM = {'conv1': '0', 'bn1': '1', 'conv2': '3', 'bn2': '4', 'conv3': '6', 'bn3': '7'}
_HEAD = {'block/conv': '0', 'block/bn': '1', 'classifier': '4'}
_BN = {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean', 'var': 'running_var'}


def flax_model(variant: str, **overrides) -> PSPNet:
  return PSPNet(num_classes=CLASSES, depth=14, **dict(VARIANTS[variant], **overrides))


def image(size: int = SIZE, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=(BATCH, size, size, 3)).astype(np.float32)


def flax_to_semseg(path: str) -> str:
  """'params/backbone/layer1_0/downsample_bn/scale' -> 'layer1.0.downsample.1.weight'."""
  _, *mods, leaf = path.split('/')
  module = '/'.join(mods)
  if mods[0] == 'backbone':
    module = '/'.join(mods[1:])
    if module in _STEM:
      module = f'layer0.{_STEM[module]}'
    module = re.sub(r'^layer(\d)_(\d+)/', r'layer\1.\2.', module)
    module = module.replace('downsample_conv', 'downsample.0').replace('downsample_bn',
                                                                       'downsample.1')
  elif mods[0] == 'ppm':
    i = mods[1].split('_')[1]
    module = f'ppm.features.{i}.{1 if mods[2] == "conv" else 2}'
  else:
    module = f'{mods[0]}.{_HEAD["/".join(mods[1:])]}'
  is_bn = leaf in ('scale', 'mean', 'var') or (leaf == 'bias' and re.search(
      r'(layer0\.[147]|bn\d|downsample\.1|features\.\d+\.2|(cls|aux)\.1)$', module))
  return f'{module}.{_BN[leaf] if is_bn else ("weight" if leaf == "kernel" else "bias")}'


def semseg_state_dict(model: PSPNet, seed: int = 1) -> dict:
  """Random conv weights (He scale), biases, BN affine and running statistics, semseg names."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3)),
                                             train=False))
  rng = np.random.default_rng(seed)
  out = {}
  for path, s in sorted(flatten(dict(shapes)).items()):
    leaf = path.rsplit('/', 1)[1]
    if leaf == 'kernel':
      w = rng.normal(0, np.sqrt(2.0 / np.prod(s.shape[:-1])), s.shape).transpose(3, 2, 0, 1)
    elif leaf == 'scale':
      w = rng.uniform(0.5, 1.5, s.shape)
    elif leaf == 'var':
      w = rng.uniform(0.5, 2.0, s.shape)
    else:  # bias, mean
      w = rng.normal(0, 0.2, s.shape)
    out[flax_to_semseg(path)] = np.ascontiguousarray(w, np.float32)
  return out


def to_mmseg_keys(state_dict: dict) -> dict:
  """semseg names -> mmsegmentation's (ResNetV1c ``backbone.stem.N``, PSPHead, FCNHead)."""
  rules = ((r'^layer0\.(\d)\.', r'backbone.stem.\1.'), (r'^(layer\d)\.', r'backbone.\1.'),
           (r'^ppm\.features\.(\d+)\.1\.', r'decode_head.psp_modules.\1.1.conv.'),
           (r'^ppm\.features\.(\d+)\.2\.', r'decode_head.psp_modules.\1.1.bn.'),
           (r'^cls\.0\.', 'decode_head.bottleneck.conv.'),
           (r'^cls\.1\.', 'decode_head.bottleneck.bn.'), (r'^cls\.4\.', 'decode_head.conv_seg.'),
           (r'^aux\.0\.', 'auxiliary_head.convs.0.conv.'),
           (r'^aux\.1\.', 'auxiliary_head.convs.0.bn.'), (r'^aux\.4\.', 'auxiliary_head.conv_seg.'))
  out = {}
  for key, value in state_dict.items():
    for pattern, repl in rules:
      if re.match(pattern, key):
        key = re.sub(pattern, repl, key)
        break
    out[key] = value
  return out


def state_dict(variant: str, model: PSPNet, seed: int = 1) -> dict:
  sd = semseg_state_dict(model, seed)
  return to_mmseg_keys(sd) if variant == 'mmseg' else sd
