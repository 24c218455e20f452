"""Config validation that runs before anything is built or compiled.

Every error names the offending field as `config.<path>=<value>` and says what is allowed.
"""
import os
import re

import jax


class ConfigError(ValueError):
  """A config field has a bad value."""


def _fail(path: str, value, why: str):
  raise ConfigError(f'config.{path}={value!r}: {why}')


def _check_int(config, path: str, minimum: int):
  node = config
  for part in path.split('.'):
    node = node[part]
  if isinstance(node, bool) or not isinstance(node, int) or node < minimum:
    _fail(path, node, f'must be an integer >= {minimum}')
  return node


def _check_choice(config, path: str, choices):
  node = config
  for part in path.split('.'):
    node = node[part]
  if node not in choices:
    _fail(path, node, f'must be one of {sorted(choices, key=str)}')
  return node


def _check_common(config):
  from jaxseg import methods  # pylint: disable=g-import-not-at-top
  from jaxseg.data import sources  # pylint: disable=g-import-not-at-top
  _check_choice(config, 'method', methods.METHODS)
  _check_choice(config, 'dataset.name', sources.SOURCES)
  for field, minimum in [('seed', 0), ('batch_size', 1), ('eval_batch_size', 1),
                         ('num_train_steps', 0), ('log_every_steps', 1),
                         ('eval_every_steps', 0), ('checkpoint_every_steps', 1),
                         ('keep_checkpoints', 1), ('data_threads', 1)]:
    _check_int(config, field, minimum)
  num_devices = config.get('num_devices', 0) or jax.device_count()
  if num_devices > jax.device_count():
    _fail('num_devices', num_devices, f'only {jax.device_count()} devices are present')
  for field in ('batch_size', 'eval_batch_size'):
    if config[field] % num_devices:
      _fail(field, config[field], f'must be divisible by the {num_devices} devices of the mesh')


def _check_dataset(config):
  ds = config.dataset
  aug = ds.augment
  if ds.name == 'synthetic':
    for field in ('num_train', 'num_val'):
      _check_int(config, f'dataset.{field}', 1)
    if len(ds.image_size) != 2 or min(ds.image_size) < 8:
      _fail('dataset.image_size', tuple(ds.image_size), 'must be (height, width), each >= 8')
    if (aug.crop_size[0] > ds.image_size[0]) or (aug.crop_size[1] > ds.image_size[1]):
      _fail('dataset.augment.crop_size', tuple(aug.crop_size),
            f'is larger than the images (config.dataset.image_size={tuple(ds.image_size)})')
  if len(aug.crop_size) != 2 or min(aug.crop_size) < 1:
    _fail('dataset.augment.crop_size', tuple(aug.crop_size), 'must be (height, width) >= 1')
  if aug.get('scales') and min(aug.scales) <= 0:
    _fail('dataset.augment.scales', tuple(aug.scales), 'scales must be > 0')
  if len(aug.mean) != 3 or len(aug.std) != 3 or min(aug.std) <= 0:
    _fail('dataset.augment.std', tuple(aug.std), 'mean and std need 3 values, std > 0')


def _check_model(config):
  from jaxseg.models import registry  # pylint: disable=g-import-not-at-top
  m = config.model
  if config.method == 'segmentation':
    _check_choice(config, 'model.name', registry.SEGMENTATION_MODELS)
  _check_choice(config, 'model.dtype', registry.DTYPES)
  if 'depth' in m:
    _check_choice(config, 'model.depth', {14, 50, 101, 152})
  if 'layout' in m:
    _check_choice(config, 'model.layout', {'caffe', 'pytorch'})
  if 'output_stride' in m:
    _check_choice(config, 'model.output_stride', {8, 16, 32})
  if 'bn_mode' in m:
    _check_choice(config, 'model.bn_mode', {'frozen', 'frozen_affine', 'train'})
  if 'conv_impl' in m:
    _check_choice(config, 'model.conv_impl', {'xla', 'matmul'})
  if 'aspp_rates' in m:
    if not m.aspp_rates or min(m.aspp_rates) < 1:
      _fail('model.aspp_rates', tuple(m.aspp_rates), 'need at least one rate >= 1')
    branches = m.get('aspp_branches', 0) or 0
    if not 0 <= branches <= len(m.aspp_rates):
      _fail('model.aspp_branches', branches, f'must be 0 (all) .. {len(m.aspp_rates)}')
  if m.get('msc', False):
    if not m.msc_scales or m.msc_scales[0] != 1.0 or min(m.msc_scales) <= 0:
      _fail('model.msc_scales', tuple(m.msc_scales), 'must start with 1.0 and be > 0')


def _check_optimizer(config):
  o = config.optimizer
  _check_choice(config, 'optimizer.name', {'sgd', 'adam', 'adamw'})
  _check_choice(config, 'optimizer.schedule', {'poly', 'constant'})
  if not o.learning_rate > 0:
    _fail('optimizer.learning_rate', o.learning_rate, 'must be > 0')
  if o.get('weight_decay', 0.0) < 0:
    _fail('optimizer.weight_decay', o.weight_decay, 'must be >= 0')
  groups = o.get('param_groups', ()) or ()
  items = groups.items() if hasattr(groups, 'items') else enumerate(groups)
  for key, group in items:
    field = f'optimizer.param_groups.{key}' if hasattr(groups, 'items') else (
        f'optimizer.param_groups[{key}]')
    try:
      re.compile(group['pattern'])
    except (re.error, KeyError, TypeError) as e:
      _fail(f'{field}.pattern', group.get('pattern'), f'bad regex: {e}')


def _check_init(config):
  """``init_layout`` is a known layout; ``init_from``, when set, exists (file or converter dir)."""
  from jaxseg.convert.formats import CONVERTED_FILE  # pylint: disable=g-import-not-at-top
  from jaxseg.convert.layouts import LAYOUTS  # pylint: disable=g-import-not-at-top
  if 'init_layout' in config:
    _check_choice(config, 'init_layout', LAYOUTS)
  path = config.get('init_from', '')
  if not path:
    return
  what = ('a weight file (.pth/.pt/.npz/.safetensors) or a directory written by '
          '`python -m jaxseg.convert`')
  if os.path.isdir(path):
    if not os.path.isfile(os.path.join(path, CONVERTED_FILE)):
      _fail('init_from', path, f'is a directory without {CONVERTED_FILE}; expected {what}')
  elif not os.path.isfile(path):
    _fail('init_from', path, f'no such file or directory; expected {what}')


def _check_positive(config, path: str, allow_zero: bool = False):
  node = config
  for part in path.split('.'):
    node = node[part]
  if isinstance(node, bool) or not isinstance(node, (int, float)) or (
      node < 0 if allow_zero else node <= 0):
    _fail(path, node, 'must be a number >= 0' if allow_zero else 'must be a number > 0')
  return node


def _check_padnet(config):
  """PAD-Net model, loss and evaluation fields (configs/padnet.py)."""
  from jaxseg.heads.padnet_distillation import (  # pylint: disable=g-import-not-at-top
      DISTILLATION_MODES, GATE_SOURCES)
  from jaxseg.losses.depth import RESIZE_MODES  # pylint: disable=g-import-not-at-top
  from jaxseg.losses.normals import NORMALS_KINDS  # pylint: disable=g-import-not-at-top
  from jaxseg.models.padnet import (  # pylint: disable=g-import-not-at-top
      DISTILL_INPUTS, LOSS_TERMS, TASK_MODES)
  m = config.model
  _check_choice(config, 'model.name', {'padnet'})
  _check_choice(config, 'model.tasks', TASK_MODES)
  _check_choice(config, 'model.distillation', DISTILLATION_MODES)
  _check_choice(config, 'model.gate_source', GATE_SOURCES)
  _check_choice(config, 'model.distill_input', DISTILL_INPUTS)
  _check_choice(config, 'model.head_bn_mode', {'frozen', 'frozen_affine', 'train'})
  _check_choice(config, 'model.param_init', {'fast', 'flax'})
  for field, minimum in (('features', 4), ('width', 1), ('aggregate_features', 1),
                         ('deconv_kernel', 2)):
    _check_int(config, f'model.{field}', minimum)
  if m.features % 4:
    _fail('model.features', m.features, 'must be divisible by 4 (branches N/2, decoders N/4)')
  if not set(m.aggregate_layers) <= {'layer1', 'layer2', 'layer3'}:
    _fail('model.aggregate_layers', tuple(m.aggregate_layers),
          "must be a subset of ('layer1', 'layer2', 'layer3')")
  weights = config.loss.weights
  for term in weights:
    if term not in LOSS_TERMS:
      _fail(f'loss.weights.{term}', weights[term], f'unknown term; terms are {LOSS_TERMS}')
    _check_positive(config, f'loss.weights.{term}', allow_zero=True)
  finals = {'multitask': ('depth', 'parsing'), 'depth_parsing': ('depth', 'parsing'),
            'depth': ('depth',), 'parsing': ('parsing',)}[m.tasks]
  for term in finals:
    if not weights.get(term, 0.0) > 0:
      _fail(f'loss.weights.{term}', weights.get(term, 0.0),
            f'must be > 0: config.model.tasks={m.tasks!r} trains that final task')
  _check_choice(config, 'loss.depth_kind', {'l1', 'l2'})
  _check_choice(config, 'loss.normals_kind', NORMALS_KINDS)
  _check_choice(config, 'loss.resize', RESIZE_MODES)
  beta = _check_positive(config, 'loss.contour_pos_weight', allow_zero=True)
  if beta >= 1:
    _fail('loss.contour_pos_weight', beta, 'must be in [0, 1) (0 = class balance per batch)')
  ev = config.evaluation
  _check_positive(config, 'evaluation.min_depth')
  _check_positive(config, 'evaluation.max_depth', allow_zero=True)
  if ev.max_depth and ev.max_depth <= ev.min_depth:
    _fail('evaluation.max_depth', ev.max_depth,
          f'must be 0 (no bound) or > config.evaluation.min_depth={ev.min_depth}')
  _check_choice(config, 'evaluation.gt_range', {'mask', 'clip'})
  _check_choice(config, 'evaluation.depth_resize', {'bilinear', 'nearest'})
  _check_int(config, 'evaluation.contour_thresholds', 1)
  _check_int(config, 'evaluation.contour_tolerance', 0)


def _check_dsr(config):
  """Depth super-resolution fields (configs/dsr.py): DSRNet, the 'dsr' recipe, loss, units."""
  from jaxseg.data.formats.dsr import SCALES  # pylint: disable=g-import-not-at-top
  from jaxseg.methods.dsr import (  # pylint: disable=g-import-not-at-top
      LOSS_KINDS, LR_UP_SOURCES, PROTOCOLS)
  from jaxseg.models.dbpn import PROJECTION  # pylint: disable=g-import-not-at-top
  m, aug = config.model, config.dataset.augment
  _check_choice(config, 'model.name', {'dbpn'})
  for field in ('num_stages', 'features', 'feat0'):
    _check_int(config, f'model.{field}', 1)
  for field in ('dense', 'residual'):
    if not isinstance(m[field], bool):
      _fail(f'model.{field}', m[field], 'must be True or False')
  _check_choice(config, 'model.lr_up', LR_UP_SOURCES)
  _check_positive(config, 'model.input_scale')
  _check_choice(config, 'dataset.augment.recipe', {'dsr'})
  scale = _check_choice(config, 'dataset.augment.dsr_scale', set(SCALES) & set(PROJECTION))
  protocol = _check_choice(config, 'dataset.augment.dsr_protocol', PROTOCOLS)
  if aug.crop_size[0] % scale or aug.crop_size[1] % scale:
    _fail('dataset.augment.crop_size', tuple(aug.crop_size),
          f'must be a multiple of config.dataset.augment.dsr_scale={scale}')
  _check_choice(config, 'loss.kind', LOSS_KINDS)
  ev = config.evaluation
  if not isinstance(ev.denormalize, bool):
    _fail('evaluation.denormalize', ev.denormalize, 'must be True or False')
  if ev.denormalize and protocol != 'nyu':
    _fail('evaluation.denormalize', ev.denormalize,
          f"needs config.dataset.augment.dsr_protocol='nyu' (only it min-max normalises), got "
          f'{protocol!r}')
  _check_positive(config, 'evaluation.units_scale')
  _check_int(config, 'evaluation.border', 0)


def validate(config):
  """Raises ConfigError naming the first bad field; returns the config unchanged."""
  _check_common(config)
  _check_dataset(config)
  _check_model(config)
  _check_optimizer(config)
  _check_init(config)
  if config.method == 'padnet':
    _check_padnet(config)
  if config.method == 'dsr':
    _check_dsr(config)
  return config
