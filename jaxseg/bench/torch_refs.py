"""The PyTorch references of jaxseg's models, without importing torch: which configs have one,
and how to build it.

  supports(config)            None when `config` has a reference, else the reason why not
  from_config(config, ...)    the reference bench (`torch_deeplabv2.TorchDeepLabBench` or
                              `torch_padnet_bench.TorchPADNetBench`) for a DeepLab v2 / PAD-Net config

`jaxseg.bench.torch_env` has `available()` (whether torch can be imported) and `import_torch()`.
The modules that define the references (`torch_resnet`, `torch_deeplabv2`, `torch_padnet`,
`torch_padnet_loss`) import torch when imported; this one imports them only when asked to build.
"""
from __future__ import annotations

from typing import Optional

from jaxseg.backbones.resnet import LAYOUTS, STAGE_BLOCKS
from jaxseg.bench.torch_env import OPTIMIZERS, available
from jaxseg.heads.padnet_distillation import DISTILLATION_MODES, GATE_SOURCES
from jaxseg.methods.padnet.model import DISTILL_INPUTS, TASK_MODES
from jaxseg.nn.norm import BN_MODES

FEATURE_MAPS = ('stem', 'layer1', 'layer2', 'layer3', 'layer4')


def _deeplabv2_why_not(config) -> Optional[str]:
  model = config.get('model', {})
  if model.get('name', None) != 'deeplabv2':
    return f'no PyTorch reference for model {model.get("name")!r} of method deeplabv2'
  if model.get('layout', 'caffe') != 'caffe' or model.get('output_stride', 8) != 8:
    return 'the PyTorch reference is the caffe layout at output stride 8 only'
  if model.get('multi_level', False):
    return 'the PyTorch reference has no multi-level head'
  return None


def _padnet_why_not(config) -> Optional[str]:
  model = config.get('model', {})
  if model.get('name', None) != 'padnet':
    return f'no PyTorch reference for model {model.get("name")!r} of method padnet'
  checks = ((model.get('tasks', 'multitask'), TASK_MODES, 'tasks'),
            (model.get('distillation', 'C'), DISTILLATION_MODES, 'distillation'),
            (model.get('gate_source', 'target'), GATE_SOURCES, 'gate_source'),
            (model.get('distill_input', 'predictions'), DISTILL_INPUTS, 'distill_input'),
            (model.get('layout', 'pytorch'), LAYOUTS, 'layout'),
            (model.get('output_stride', 8), (8, 16, 32), 'output_stride'),
            (model.get('depth', 50), tuple(STAGE_BLOCKS), 'depth'),
            (model.get('bn_mode', 'train'), BN_MODES, 'bn_mode'),
            (model.get('head_bn_mode', 'train'), BN_MODES, 'head_bn_mode'),
            (config.get('optimizer', {}).get('name', 'sgd'), OPTIMIZERS, 'optimizer.name'))
  for value, allowed, field in checks:
    if value not in allowed:
      return f'the PyTorch PAD-Net reference has no {field}={value!r} (known: {allowed})'
  if model.get('dtype', 'float32') != 'float32':
    return f'the PyTorch PAD-Net reference is float32 only (model.dtype={model.get("dtype")!r})'
  if model.get('deconv_kernel', 4) % 2:
    return 'the PyTorch PAD-Net reference needs an even deconv_kernel (as jaxseg)'
  bad = [l for l in model.get('aggregate_layers', ()) if l not in FEATURE_MAPS]
  if bad:
    return f'unknown aggregate_layers {bad} (known: {FEATURE_MAPS})'
  groups = config.get('optimizer', {}).get('param_groups', ()) or ()
  groups = list(groups.values()) if hasattr(groups, 'values') else list(groups)
  if any(g.get('frozen', False) for g in groups):
    return 'the PyTorch PAD-Net reference does not mirror frozen parameter groups'
  return None


_WHY_NOT = {'deeplabv2': _deeplabv2_why_not, 'padnet': _padnet_why_not}


def supports(config) -> Optional[str]:
  """None when `config` has a PyTorch reference here, else the reason why not."""
  method = config.get('method', None)
  if method not in _WHY_NOT:
    return f'no PyTorch reference for method {method!r} (known: {sorted(_WHY_NOT)})'
  if not available():
    return 'PyTorch is not installed'
  return _WHY_NOT[method](config)


def from_config(config, what: str = 'train', channels_last: bool = False,
                threads: Optional[int] = None, num_classes: Optional[int] = None):
  """The reference bench for a config that `supports`; raises ValueError with the reason else."""
  why = supports(config)
  if why:
    raise ValueError(why)
  if config.method == 'padnet':
    from jaxseg.bench import torch_padnet_bench  # pylint: disable=g-import-not-at-top  (imports torch)
    return torch_padnet_bench.from_config(config, what, channels_last=channels_last, threads=threads,
                                    num_classes=num_classes)
  from jaxseg.bench import torch_deeplabv2  # pylint: disable=g-import-not-at-top  (imports torch)
  return torch_deeplabv2.from_config(config, what, channels_last=channels_last, threads=threads,
                                     num_classes=num_classes)
