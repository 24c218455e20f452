"""AdaptSegNet config checks (`configs/adaptsegnet.py`), run before anything is built.

A target-domain training set is required whenever a discriminator trains (some adversarial
weight > 0); source, target and validation sets must share the class count; a discriminator
file (`discriminator.init_from`) must be a reference FCDiscriminator state dict of the right
shapes. Errors name the field (and the file).
"""
import os

from jaxseg import convert
from jaxseg.configlib import (check_bool, check_choice, check_int, check_positive, fail)
from jaxseg.data import sources, synthetic
from jaxseg.methods.adaptsegnet import discriminator
from jaxseg.methods.adaptsegnet.loss import GAN_LOSSES
from jaxseg.methods.adaptsegnet.model import LEVELS, MODEL_NAMES, levels

# Class count of a dataset config when it is known from the config alone (None: not checked).
_DEFAULT_CLASSES = {'gta5': 19, 'synthia': 16, 'cityscapes': 19}


def dataset_num_classes(ds):
  """Class count of a dataset config (synthetic 7, GTA5 19, SYNTHIA / Cityscapes `num_classes`)."""
  if ds.name == 'synthetic':
    return synthetic.NUM_CLASSES
  if ds.name in _DEFAULT_CLASSES:
    return ds.get('num_classes', _DEFAULT_CLASSES[ds.name])
  return None


def _check_classes(config):
  want = dataset_num_classes(config.dataset)
  for field in ('target', 'val_dataset'):
    ds = config.dataset.get(field, None)
    if not ds:
      continue
    got = dataset_num_classes(ds)
    if want is not None and got is not None and got != want:
      fail(f'dataset.{field}.num_classes', got,
           f'the source config.dataset ({config.dataset.name}) has {want} classes; source, '
           'target and validation sets must share one class protocol')


def _check_target(config):
  target = config.dataset.get('target', None)
  if not levels(config):
    return  # source-only: no discriminator, no target batches
  if not target:
    fail('dataset.target', target, 'domain adaptation needs a target-domain training set '
         '(a dataset config with its own augment), or set every config.loss.adv_weights to 0 '
         'for source-only training')
  check_choice(config, 'dataset.target.name', sources.SOURCES)
  if 'augment' not in target:
    fail('dataset.target.augment', None, 'the target set needs its own augment block')


def _check_discriminator_files(config):
  paths = tuple(config.discriminator.get('init_from', ()) or ())
  if len(paths) > len(LEVELS):
    fail('discriminator.init_from', paths, f'one path per level {LEVELS} at most')
  num_classes = dataset_num_classes(config.dataset)
  for lvl, path in zip(LEVELS, paths):
    if not path:
      continue
    field = f'discriminator.init_from[{LEVELS.index(lvl)}]'
    if lvl not in levels(config):
      fail(field, path, f'{lvl} has no discriminator (its adversarial weight is 0 or the '
           'generator is single-level)')
    if not os.path.isfile(path):
      fail(field, path, 'no such file (a reference FCDiscriminator state dict)')
    if num_classes is None:
      continue
    try:
      discriminator.check_state_dict(convert.read_weights(path), num_classes,
                                     config.discriminator.ndf, path)
    except ValueError as e:
      fail(field, path, str(e))


def check_config(config):
  m, loss, d = config.model, config.loss, config.discriminator
  check_choice(config, 'model.name', MODEL_NAMES)
  check_bool(config, 'model.multi_level')
  if m.get('msc', False):
    fail('model.msc', m.msc, 'AdaptSegNet uses no multi-scale input')
  branches = m.get('aspp_branches', 0) or 0
  if not 0 <= branches <= len(m.aspp_rates):
    fail('model.aspp_branches', branches, f'must be 0 (all) .. {len(m.aspp_rates)}')
  check_choice(config, 'loss.gan', GAN_LOSSES)
  if len(loss.adv_weights) != len(LEVELS) or min(loss.adv_weights) < 0:
    fail('loss.adv_weights', tuple(loss.adv_weights),
         f'need one weight >= 0 per level {LEVELS} (conv4, conv5)')
  if loss.adv_weights[0] > 0 and not m.multi_level:
    fail('loss.adv_weights', tuple(loss.adv_weights),
         'level1 (conv4) adaptation needs config.model.multi_level=True')
  check_positive(config, 'loss.seg_aux_weight', allow_zero=True)
  check_int(config, 'discriminator.ndf', 1)
  check_bool(config, 'discriminator.upsample_output')
  check_choice(config, 'discriminator.optimizer.name', {'sgd', 'adam', 'adamw'})
  check_positive(config, 'discriminator.optimizer.learning_rate')
  _check_target(config)
  _check_classes(config)
  _check_discriminator_files(config)
