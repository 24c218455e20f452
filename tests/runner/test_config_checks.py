"""Bad config values stop before anything compiles, with an error naming the field."""
import pytest

from jaxseg.configlib import set_field
from jaxseg.runner import config_checks
from jaxseg.config_files import load_config


def smoke():
  return load_config('configs/deeplabv2.py:smoke')


@pytest.mark.parametrize('path,value,match', [
    ('model.name', 'deeplabv9', 'config.model.name'),
    ('dataset.name', 'nope', 'config.dataset.name'),
    ('num_train_steps', -1, 'config.num_train_steps'),
    ('batch_size', 0, 'config.batch_size'),
    ('model.depth', 7, 'config.model.depth'),
    ('model.output_stride', 4, 'config.model.output_stride'),
    ('model.bn_mode', 'sync', 'config.model.bn_mode'),
    ('dataset.augment.crop_size', (80, 80), 'config.dataset.augment.crop_size'),
    ('optimizer.learning_rate', 0.0, 'config.optimizer.learning_rate'),
    ('optimizer.name', 'lamb', 'config.optimizer.name'),
    ('model.aspp_branches', 5, 'config.model.aspp_branches'),
    ('method', 'nothing', 'config.method'),
])
def test_bad_field_is_named(path, value, match):
  c = smoke()
  set_field(c, path, value)
  with pytest.raises(config_checks.ConfigError, match=match.replace('.', r'\.')):
    config_checks.validate(c)


def test_bad_param_group_regex_is_named():
  c = smoke()
  c.optimizer.param_groups.head_bias.pattern = '('
  with pytest.raises(config_checks.ConfigError, match=r'param_groups\.head_bias\.pattern'):
    config_checks.validate(c)


@pytest.mark.parametrize('arg', [None, 'smoke', 'voc'])
def test_configs_build(arg):
  c = load_config('configs/deeplabv2.py' + (f':{arg}' if arg else ''))
  assert c.model.name == 'deeplabv2' and c.method == 'deeplabv2'
  for field in ('seed', 'batch_size', 'num_train_steps', 'log_every_steps', 'eval_every_steps',
                'checkpoint_every_steps', 'dataset', 'model', 'optimizer'):
    assert field in c
  if arg != 'voc':  # the VOC data source arrives with the datasets issue
    config_checks.validate(c)


def test_voc_recipe_values():
  c = load_config('configs/deeplabv2.py:voc')
  assert (c.batch_size, c.num_train_steps, tuple(c.dataset.augment.crop_size)) == (10, 20000, (321, 321))
  assert c.optimizer.learning_rate == 2.5e-4 and c.model.bn_mode == 'frozen'
  groups = c.optimizer.param_groups
  assert groups['head_weight']['lr_mult'] == 10 and groups['head_bias']['lr_mult'] == 20
  assert groups['head_bias']['weight_decay'] == 0 and groups['batchnorm']['frozen']


def test_unknown_variant():
  with pytest.raises(ValueError, match='unknown variant'):
    load_config('configs/deeplabv2.py:cityscapez')
