"""PyTorch state_dict key layouts -> flat Flax variables ``{'params/...|batch_stats/...': array}``.

Layouts:
  * ``torchvision_resnet``: ``conv1``, ``bn1``, ``layer{k}.{i}.{conv,bn}{1,2,3}``,
    ``layer{k}.0.downsample.{0,1}`` -> ResNet-level paths (``conv1``, ``layer{k}_{i}/conv1``,
    ``layer{k}_0/downsample_conv``, ...). ``fc`` -> ``fc`` only with ``include_fc``. Loaded under
    ``backbone`` by default.
  * ``deeplabv2``: the same backbone keys with an optional ``Scale.`` prefix, under ``backbone/``;
    ASPP ``layer5.conv2d_list.{i}`` -> ``aspp/branch_{i}``.
  * ``adaptsegnet_multi``: as deeplabv2, but ``layer5`` (on layer3) -> ``aspp_aux`` and ``layer6``
    (on layer4) -> ``aspp``.
  * ``deeplab_pytorch``: kazuto1011/deeplab-pytorch's names, with the optional ``base.`` prefix
    of its ``MSC`` wrapper (``DeepLabV2_ResNet101_MSC``): stem ``layer1.conv1.{conv,bn}``;
    ``layer{K}.block{I}.{reduce,conv3x3,increase,shortcut}.{conv,bn}`` for K = 2..5, I = 1..n
    (-> ``layer{K-1}_{I-1}/{conv1,conv2,conv3,downsample_conv}`` and their BNs); ASPP
    ``aspp.c{i}`` -> ``aspp/branch_{i}``. Stride on the 1x1 ``reduce`` (caffe layout).
  * ``semseg_resnet`` / ``semseg_pspnet``, ``mmseg_resnetv1c`` / ``mmseg_pspnet``: PSPNet's deep-stem
    ResNet (ImageNet init, backbone only) and whole PSPNet checkpoints in the hszhao/semseg and
    mmsegmentation key layouts (``key_map``; see the PSPNet section at the end of this file).
  * ``plain``: keys are already ``/``-joined Flax paths (``params/...``, ``batch_stats/...``; a key
    without a collection goes to ``batch_stats`` if its leaf is ``mean``/``var``, else ``params``).

Rules: conv OIHW -> HWIO; BN ``weight`` -> ``scale``, ``bias`` -> ``bias``, ``running_mean`` ->
batch_stats ``mean``, ``running_var`` -> batch_stats ``var``; ``num_batches_tracked`` ignored;
linear [out, in] -> [in, out]. Whether the stride sits on the 1x1 (caffe) or the 3x3 (pytorch) is
a model setting (``ResNet(layout=...)``), not a key difference.
"""
import collections
import dataclasses
import re
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
from flax import traverse_util

Flat = Dict[str, np.ndarray]
COLLECTIONS = ('params', 'batch_stats')


@dataclasses.dataclass(frozen=True)
class Layout:
  name: str
  backbone_root: str = ''                 # Flax path the backbone keys go under
  heads: Tuple[Tuple[str, str], ...] = ()  # (torch module, Flax module) of ASPP classifiers
  strip_prefix: str = ''                  # removed from keys that start with it
  default_prefix: str = ''                # where load_into puts the tree by default
  rename: str = ''                        # key dialect translated first (see _RENAMES)
  # (key after strip_prefix, backbone_root) -> (Flax module path, leaf, is_bn), DROP (an ignored
  # key) or None (parse as a ResNet key); for layouts whose keys are not torchvision-like.
  key_map: Optional[Callable[[str, str], Union[None, str, Tuple[str, str, bool]]]] = None


DROP = 'drop'  # a key_map result: the key is known and deliberately not loaded (e.g. ``fc``)

LAYOUTS = {
    'torchvision_resnet': Layout('torchvision_resnet', default_prefix='backbone'),
    'deeplabv2': Layout('deeplabv2', 'backbone', (('layer5', 'aspp'),), 'Scale.'),
    'adaptsegnet_multi': Layout('adaptsegnet_multi', 'backbone',
                                (('layer5', 'aspp_aux'), ('layer6', 'aspp')), 'Scale.'),
    'deeplab_pytorch': Layout('deeplab_pytorch', 'backbone', (('layer5', 'aspp'),), 'base.',
                              rename='deeplab_pytorch'),
    'plain': Layout('plain'),
}

_STEM = re.compile(r'^(conv\d|bn\d)\.(\w+)$')
_BLOCK = re.compile(r'^layer(\d)\.(\d+)\.(conv\d|bn\d)\.(\w+)$')
_DOWNSAMPLE = re.compile(r'^layer(\d)\.(\d+)\.downsample\.([01])\.(\w+)$')
_ASPP = re.compile(r'^(layer\d)\.conv2d_list\.(\d+)\.(weight|bias)$')
_FC = re.compile(r'^fc\.(weight|bias)$')
_BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
              'running_mean': ('batch_stats', 'mean'), 'running_var': ('batch_stats', 'var')}


# deeplab-pytorch's module names -> the torchvision / DeepLab v2 names parsed below.
_DLP_STEM = re.compile(r'^layer1\.conv1\.(conv|bn)\.(\w+)$')
_DLP_BLOCK = re.compile(r'^layer([2-5])\.block(\d+)\.(reduce|conv3x3|increase|shortcut)\.'
                        r'(conv|bn)\.(\w+)$')
_DLP_ASPP = re.compile(r'^aspp\.c(\d+)\.(weight|bias)$')
_DLP_UNITS = {'reduce': '1', 'conv3x3': '2', 'increase': '3'}


def _deeplab_pytorch_key(key: str) -> Optional[str]:
  """``layer2.block1.reduce.conv.weight`` -> ``layer1.0.conv1.weight`` etc.; None if the key is
  not one of deeplab-pytorch's (so torchvision-style keys are not silently accepted)."""
  m = _DLP_STEM.match(key)
  if m:
    return f'{m.group(1)}1.{m.group(2)}'
  m = _DLP_BLOCK.match(key)
  if m:
    stage, block, unit, kind, leaf = m.groups()
    if int(block) < 1:
      return None
    prefix = f'layer{int(stage) - 1}.{int(block) - 1}'
    if unit == 'shortcut':
      return f'{prefix}.downsample.{0 if kind == "conv" else 1}.{leaf}'
    return f'{prefix}.{kind}{_DLP_UNITS[unit]}.{leaf}'
  m = _DLP_ASPP.match(key)
  if m:
    return f'layer5.conv2d_list.{m.group(1)}.{m.group(2)}'
  return None


_RENAMES = {'': lambda key: key, 'deeplab_pytorch': _deeplab_pytorch_key}


def get_layout(name: str) -> Layout:
  if name not in LAYOUTS:
    raise ValueError(f'unknown layout {name!r}; expected one of {sorted(LAYOUTS)}')
  return LAYOUTS[name]


def join(*parts: str) -> str:
  return '/'.join(p for p in parts if p)


def conv_kernel(w: np.ndarray, key: str) -> np.ndarray:
  """OIHW -> HWIO."""
  if w.ndim != 4:
    raise ValueError(f'{key}: expected a 4-D conv weight (O, I, H, W), got shape {w.shape}')
  return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))


def _module_leaf(module: str, leaf: str, value: np.ndarray, key: str,
                 is_bn: bool) -> Optional[Tuple[str, np.ndarray]]:
  """Flax (path, array) of one torch leaf of a conv or BN module; None if ignored."""
  if is_bn:
    if leaf == 'num_batches_tracked':
      return None
    if leaf not in _BN_LEAVES or value.ndim != 1:
      raise ValueError(f'{key}: not a BatchNorm leaf {sorted(_BN_LEAVES)} of shape (C,)')
    collection, name = _BN_LEAVES[leaf]
    return join(collection, module, name), value
  if leaf == 'weight':
    return join('params', module, 'kernel'), conv_kernel(value, key)
  if leaf == 'bias':
    return join('params', module, 'bias'), value
  raise ValueError(f'{key}: unknown conv leaf {leaf!r}')


def _backbone_key(key: str) -> Optional[Tuple[str, str, bool]]:
  """torch key -> (Flax module path, leaf, is_bn), or None if it is not a ResNet key."""
  m = _STEM.match(key)
  if m:
    return m.group(1), m.group(2), m.group(1).startswith('bn')
  m = _BLOCK.match(key)
  if m:
    k, i, mod, leaf = m.groups()
    return f'layer{k}_{i}/{mod}', leaf, mod.startswith('bn')
  m = _DOWNSAMPLE.match(key)
  if m:
    k, i, j, leaf = m.groups()
    mod = 'downsample_bn' if j == '1' else 'downsample_conv'
    return f'layer{k}_{i}/{mod}', leaf, j == '1'
  return None


def plain_path(key: str) -> str:
  """A '/'-joined Flax path, with its collection added when missing."""
  if key.split('/', 1)[0] in COLLECTIONS:
    return key
  leaf = key.rsplit('/', 1)[-1]
  return join('batch_stats' if leaf in ('mean', 'var') else 'params', key)


def convert_flat(state_dict: Mapping[str, np.ndarray], layout: str,
                 include_fc: bool = False, hint: bool = True) -> Tuple[Flat, List[str]]:
  """(flat Flax variables at the layout's root, ignored torch keys). Unknown keys raise."""
  spec = get_layout(layout)
  out: Flat = collections.OrderedDict()
  ignored, unknown = [], []
  if spec.name == 'plain':
    for key, value in state_dict.items():
      out[plain_path(key)] = np.asarray(value)
    return out, ignored
  heads = dict(spec.heads)
  for key, value in state_dict.items():
    value = np.asarray(value)
    k = key[len(spec.strip_prefix):] if spec.strip_prefix and key.startswith(spec.strip_prefix) \
        else key
    k = _RENAMES[spec.rename](k)
    if k is None:
      unknown.append(key)
      continue
    item = None
    mapped = spec.key_map(k, spec.backbone_root) if spec.key_map else None
    parsed = _backbone_key(k)
    head, fc = _ASPP.match(k), _FC.match(k)
    if mapped == DROP:
      ignored.append(key)
    elif mapped is not None:
      item = _module_leaf(mapped[0], mapped[1], value, key, mapped[2])
      if item is None:
        ignored.append(key)
    elif parsed is not None:
      module, leaf, is_bn = parsed
      item = _module_leaf(join(spec.backbone_root, module), leaf, value, key, is_bn)
      if item is None:
        ignored.append(key)
    elif head and head.group(1) in heads:
      module = f'{heads[head.group(1)]}/branch_{head.group(2)}'
      item = _module_leaf(module, head.group(3), value, key, is_bn=False)
    elif fc and spec.name == 'torchvision_resnet':
      if not include_fc:
        ignored.append(key)
      elif fc.group(1) == 'weight':
        item = 'params/fc/kernel', np.ascontiguousarray(value.T)
      else:
        item = 'params/fc/bias', value
    else:
      unknown.append(key)
    if item is not None:
      out[item[0]] = item[1]
  if unknown:
    raise ValueError(f'layout {layout!r} does not recognise {len(unknown)} key(s): {unknown}'
                     + (_layout_hint(state_dict, layout) if hint else ''))
  return out, ignored


def _layout_hint(state_dict: Mapping[str, np.ndarray], layout: str) -> str:
  """'; the keys fit layout X' when another torch layout recognises every key."""
  for name in LAYOUTS:
    if name in (layout, 'plain'):
      continue
    try:
      convert_flat(state_dict, name, include_fc=True, hint=False)
    except ValueError:
      continue
    return f'; these keys fit layout {name!r}'
  return ''


def convert(state_dict: Mapping[str, np.ndarray], layout: str,
            include_fc: bool = False) -> Dict[str, Dict]:
  """Nested Flax variables ``{'params': ..., 'batch_stats': ...}`` at the layout's root."""
  flat, _ = convert_flat(state_dict, layout, include_fc)
  return unflatten(flat)


def unflatten(flat: Mapping[str, np.ndarray]) -> Dict[str, Dict]:
  return traverse_util.unflatten_dict(dict(flat), sep='/')


def flatten(tree: Mapping) -> Flat:
  return traverse_util.flatten_dict(dict(tree), sep='/')


# -- PSPNet: deep-stem ResNet and whole-model layouts (hszhao/semseg, mmsegmentation) ------------
# semseg: ImageNet init ``conv{1,2,3}`` / ``bn{1,2,3}`` + ``layer*`` + ``fc``; PSPNet checkpoints
# ``layer0.{0,1,3,4,6,7}`` (the stem as one Sequential: conv, bn, relu, ...), ``layer{1-4}``,
# ``ppm.features.{i}.{1: conv, 2: bn}``, ``cls`` / ``aux`` ``.{0: conv, 1: bn, 4: classifier}``.
# mmseg ResNetV1c: ``[backbone.]stem.{0,1,3,4,6,7}``, ``[backbone.]layer*``; PSPHead
# ``decode_head.psp_modules.{i}.1.{conv,bn}``, ``decode_head.bottleneck.{conv,bn}``,
# ``decode_head.conv_seg``; FCNHead ``auxiliary_head.convs.0.{conv,bn}``, ``.conv_seg``.
_STEM_SEQ = {'0': 'conv1', '1': 'bn1', '3': 'conv2', '4': 'bn2', '6': 'conv3', '7': 'bn3'}
_SEMSEG_STEM = re.compile(r'^layer0\.(\d)\.(\w+)$')
_SEMSEG_PPM = re.compile(r'^ppm\.features\.(\d+)\.([12])\.(\w+)$')
_SEMSEG_HEAD = re.compile(r'^(cls|aux)\.([014])\.(\w+)$')
_SEMSEG_HEAD_MODULES = {'0': ('block/conv', False), '1': ('block/bn', True),
                        '4': ('classifier', False)}
_MMSEG_STEM = re.compile(r'^stem\.(\d)\.(\w+)$')
_MMSEG_PPM = re.compile(r'^decode_head\.psp_modules\.(\d+)\.1\.(conv|bn)\.(\w+)$')
_MMSEG_HEAD = re.compile(r'^(decode_head\.bottleneck|auxiliary_head\.convs\.0)\.(conv|bn)\.(\w+)$')
_MMSEG_SEG = re.compile(r'^(decode_head|auxiliary_head)\.conv_seg\.(\w+)$')
_MMSEG_HEADS = {'decode_head': 'cls', 'decode_head.bottleneck': 'cls',
                'auxiliary_head': 'aux', 'auxiliary_head.convs.0': 'aux'}


def _stem_or_resnet(k: str, root: str, stem: re.Pattern):
  """A stem Sequential key (``layer0.N`` / ``stem.N``) or a ResNet key, under ``root``."""
  m = stem.match(k)
  if m:
    if m.group(1) not in _STEM_SEQ:
      return None
    name = _STEM_SEQ[m.group(1)]
    return join(root, name), m.group(2), name.startswith('bn')
  if _FC.match(k):
    return DROP  # the ImageNet classifier
  parsed = _backbone_key(k)
  return None if parsed is None else (join(root, parsed[0]), parsed[1], parsed[2])


def _semseg_key(k: str, root: str):
  m = _SEMSEG_PPM.match(k)
  if m:
    i, j, leaf = m.groups()
    return f'ppm/branch_{i}/{"conv" if j == "1" else "bn"}', leaf, j == '2'
  m = _SEMSEG_HEAD.match(k)
  if m:
    head, j, leaf = m.groups()
    module, is_bn = _SEMSEG_HEAD_MODULES[j]
    return f'{head}/{module}', leaf, is_bn
  return _stem_or_resnet(k, root, _SEMSEG_STEM)


def _mmseg_key(k: str, root: str):
  m = _MMSEG_PPM.match(k)
  if m:
    i, mod, leaf = m.groups()
    return f'ppm/branch_{i}/{mod}', leaf, mod == 'bn'
  m = _MMSEG_HEAD.match(k)
  if m:
    head, mod, leaf = m.groups()
    return f'{_MMSEG_HEADS[head]}/block/{mod}', leaf, mod == 'bn'
  m = _MMSEG_SEG.match(k)
  if m:
    return f'{_MMSEG_HEADS[m.group(1)]}/classifier', m.group(2), False
  if k.startswith('backbone.'):
    k = k[len('backbone.'):]
  return _stem_or_resnet(k, root, _MMSEG_STEM)


_PSPNET_HEADS = (('ppm', 'ppm'), ('cls', 'cls'), ('aux', 'aux'))  # whole-model layouts
LAYOUTS.update({
    'semseg_resnet': Layout('semseg_resnet', default_prefix='backbone', key_map=_semseg_key),
    'semseg_pspnet': Layout('semseg_pspnet', 'backbone', _PSPNET_HEADS, key_map=_semseg_key),
    'mmseg_resnetv1c': Layout('mmseg_resnetv1c', default_prefix='backbone', key_map=_mmseg_key),
    'mmseg_pspnet': Layout('mmseg_pspnet', 'backbone', _PSPNET_HEADS, key_map=_mmseg_key),
})
