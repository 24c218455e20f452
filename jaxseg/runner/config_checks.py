"""Config validation that runs before anything is built or compiled.

Every error names the offending field as `config.<path>=<value>` and says what is allowed.
"""
import os
import re

import jax

from jaxseg import methods
from jaxseg.configlib import ConfigError, check_bool, check_choice, check_int, fail
from jaxseg.convert.formats import CONVERTED_FILE
from jaxseg.convert.layouts import LAYOUTS
from jaxseg.data import sources
from jaxseg.inference import config as inference_config
from jaxseg.nn.precision import DTYPES
from jaxseg.training import optimizers

__all__ = ['ConfigError', 'validate']


def _check_common(config):
  check_choice(config, 'method', methods.METHODS)
  check_choice(config, 'dataset.name', sources.SOURCES)
  for field, minimum in [('seed', 0), ('batch_size', 1), ('eval_batch_size', 1),
                         ('num_train_steps', 0), ('log_every_steps', 1),
                         ('eval_every_steps', 0), ('checkpoint_every_steps', 1),
                         ('keep_checkpoints', 1), ('data_threads', 1)]:
    check_int(config, field, minimum)
  for field in ('num_devices', 'num_eval_examples'):
    if field in config:
      check_int(config, field, 0)
  if 'skip_nonfinite_steps' in config:
    check_bool(config, 'skip_nonfinite_steps')
  if config.get('predict', None) is not None:
    check_int(config, 'predict.num_examples', 0)
  num_devices = config.get('num_devices', 0) or jax.device_count()
  if num_devices > jax.device_count():
    fail('num_devices', num_devices, f'only {jax.device_count()} devices are present')
  for field in ('batch_size', 'eval_batch_size'):
    if config[field] % num_devices:
      fail(field, config[field], f'must be divisible by the {num_devices} devices of the mesh')
  inference_config.validate(config)


def _check_dataset(config):
  ds = config.dataset
  aug = ds.augment
  if ds.name == 'synthetic':
    for field in ('num_train', 'num_val'):
      check_int(config, f'dataset.{field}', 1)
    if len(ds.image_size) != 2 or min(ds.image_size) < 8:
      fail('dataset.image_size', tuple(ds.image_size), 'must be (height, width), each >= 8')
    if (aug.crop_size[0] > ds.image_size[0]) or (aug.crop_size[1] > ds.image_size[1]):
      fail('dataset.augment.crop_size', tuple(aug.crop_size),
            f'is larger than the images (config.dataset.image_size={tuple(ds.image_size)})')
  if len(aug.crop_size) != 2 or min(aug.crop_size) < 1:
    fail('dataset.augment.crop_size', tuple(aug.crop_size), 'must be (height, width) >= 1')
  if aug.get('scales') and min(aug.scales) <= 0:
    fail('dataset.augment.scales', tuple(aug.scales), 'scales must be > 0')
  if len(aug.mean) != 3 or len(aug.std) != 3 or min(aug.std) <= 0:
    fail('dataset.augment.std', tuple(aug.std), 'mean and std need 3 values, std > 0')


def _check_model(config):
  """Backbone fields shared by every method's model (where the config has them)."""
  m = config.model
  check_choice(config, 'model.dtype', DTYPES)
  if 'depth' in m:
    check_choice(config, 'model.depth', {14, 50, 101, 152})
  if 'layout' in m:
    check_choice(config, 'model.layout', {'caffe', 'pytorch'})
  if 'output_stride' in m:
    check_choice(config, 'model.output_stride', {8, 16, 32})
  if 'bn_mode' in m:
    check_choice(config, 'model.bn_mode', {'frozen', 'frozen_affine', 'train'})
  if 'conv_impl' in m:
    check_choice(config, 'model.conv_impl', {'xla', 'matmul'})


def _check_optimizer(config):
  o = config.optimizer
  check_choice(config, 'optimizer.name', {'sgd', 'adam', 'adamw'})
  check_choice(config, 'optimizer.schedule', set(optimizers.SCHEDULES))
  if not o.learning_rate > 0:
    fail('optimizer.learning_rate', o.learning_rate, 'must be > 0')
  if o.get('weight_decay', 0.0) < 0:
    fail('optimizer.weight_decay', o.weight_decay, 'must be >= 0')
  groups = o.get('param_groups', ()) or ()
  items = groups.items() if hasattr(groups, 'items') else enumerate(groups)
  for key, group in items:
    field = f'optimizer.param_groups.{key}' if hasattr(groups, 'items') else (
        f'optimizer.param_groups[{key}]')
    try:
      re.compile(group['pattern'])
    except (re.error, KeyError, TypeError) as e:
      fail(f'{field}.pattern', group.get('pattern'), f'bad regex: {e}')


def _check_init(config):
  """``init_layout`` is a known layout; ``init_from``, when set, exists (file or converter dir)."""
  if 'init_layout' in config:
    check_choice(config, 'init_layout', LAYOUTS)
  path = config.get('init_from', '')
  if not path:
    return
  what = ('a weight file (.pth/.pt/.npz/.safetensors) or a directory written by '
          '`python -m jaxseg.convert`')
  if os.path.isdir(path):
    if not os.path.isfile(os.path.join(path, CONVERTED_FILE)):
      fail('init_from', path, f'is a directory without {CONVERTED_FILE}; expected {what}')
  elif not os.path.isfile(path):
    fail('init_from', path, f'no such file or directory; expected {what}')


def validate(config):
  """Raises ConfigError naming the first bad field; returns the config unchanged.

  The common checks (trainer, dataset, backbone, optimizer, weights), then the method's own
  `check_config(config)` hook (`jaxseg/methods/<name>/checks.py`).
  """
  _check_common(config)
  _check_dataset(config)
  _check_model(config)
  _check_optimizer(config)
  _check_init(config)
  methods.get_method_class(config.method).check_config(config)
  return config
