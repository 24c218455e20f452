"""configs/deeplabv2.py and configs/padnet.py: the trainer block from `configlib.trainer`, the
variants through `configlib.parse_variants`, and every variant equal, field by field, to the
config it gave before (tests/configs/config_snapshot.json, written by tests/configs/snapshot.py)."""
import json

import pytest

from configs.snapshot import PATH, SPECS, as_json
from jaxseg import configlib
from jaxseg.config_files import load_config


@pytest.fixture(scope='module')
def snapshot():
  with open(PATH) as f:
    return json.load(f)


def _diff(old, new, prefix=''):
  out = []
  for k in sorted(set(old) | set(new)):
    a, b = old.get(k, '<missing>'), new.get(k, '<missing>')
    if isinstance(a, dict) and isinstance(b, dict):
      out += _diff(a, b, f'{prefix}{k}.')
    elif a != b:
      out.append(f'{prefix}{k}: {a!r} -> {b!r}')
  return out


@pytest.mark.parametrize('spec', SPECS)
def test_variant_equals_its_snapshot(spec, snapshot):
  assert not _diff(snapshot[spec], as_json(spec)), _diff(snapshot[spec], as_json(spec))


@pytest.mark.parametrize('config_file', ['configs/deeplabv2.py', 'configs/padnet.py'])
def test_trainer_block_is_configlib_trainer(config_file):
  c = load_config(config_file)
  block = configlib.trainer(c.method)
  own = {'num_train_steps', 'eval_every_steps', 'checkpoint_every_steps', 'init_layout'}
  for field in block:
    if field not in own:
      assert c[field] == block[field], field


def test_unknown_variants_name_the_allowed_ones():
  with pytest.raises(configlib.ConfigError, match=r"unknown variant 'smok'; allowed: smoke, "
                     r'voc, cityscapes, ade20k, gta5, synthia; keys: seed'):
    load_config('configs/deeplabv2.py:smok')
  with pytest.raises(configlib.ConfigError, match=r"unknown variant 'D'; allowed: smoke, nyuv2, "
                     r'cityscapes, single_depth, single_parsing, multitask, none, A, B, C'):
    load_config('configs/padnet.py:smoke,D')
  with pytest.raises(configlib.ConfigError, match="unknown variant key 'steps'"):
    load_config('configs/padnet.py:steps=3')
  with pytest.raises(configlib.ConfigError, match='seed must be a int'):
    load_config('configs/deeplabv2.py:seed=x')
  with pytest.raises(configlib.ConfigError, match='one dataset at a time'):
    load_config('configs/deeplabv2.py:voc,ade20k')
  with pytest.raises(configlib.ConfigError, match=r"one of .* at a time, got \['B', 'C'\]"):
    load_config('configs/padnet.py:B,C')


def test_variants_combine_in_any_order():
  assert load_config('configs/padnet.py:seed=3,C,smoke').to_dict() == dict(
      load_config('configs/padnet.py:smoke,C').to_dict(), seed=3)
  voc_smoke = load_config('configs/deeplabv2.py:smoke,voc')
  assert voc_smoke.dataset.name == 'voc' and voc_smoke.model.depth == 14
  assert voc_smoke.num_train_steps == 30 and voc_smoke.optimizer.param_groups.batchnorm.frozen
  assert load_config('configs/padnet.py:nyuv2,smoke').dataset.name == 'nyuv2'


def test_parse_variants_types_values():
  flags, keys = configlib.parse_variants(' smoke , lr=0.5,n=3,name=abc,on=True', ['smoke'],
                                         {'lr': float, 'n': int, 'name': str, 'on': bool})
  assert flags == ['smoke'] and keys == {'lr': 0.5, 'n': 3, 'name': 'abc', 'on': True}
  assert configlib.parse_variants('lr=1', [], {'lr': float})[1] == {'lr': 1.0}
  assert configlib.parse_variants(None, ['smoke']) == ([], {})
  with pytest.raises(configlib.ConfigError, match='n must be a int'):
    configlib.parse_variants('n=True', [], {'n': int})
  with pytest.raises(configlib.ConfigError, match="allowed keys: none"):
    configlib.parse_variants('n=1', ['smoke'])
