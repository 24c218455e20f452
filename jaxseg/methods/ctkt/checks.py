"""Depth super-resolution config checks (`configs/dsr.py`): DSRNet, the 'dsr' recipe, loss, units."""
from jaxseg.configlib import check_choice, check_int, check_positive, fail
from jaxseg.data.formats.dsr import SCALES
from jaxseg.methods.ctkt.dsrnet import PROJECTION

LOSS_KINDS = ('l1', 'l2')
LR_UP_SOURCES = ('pipeline', 'jax')
PROTOCOLS = ('nyu', 'middlebury')


def check_config(config):
  """Depth super-resolution fields (configs/dsr.py): DSRNet, the 'dsr' recipe, loss, units."""
  m, aug = config.model, config.dataset.augment
  check_choice(config, 'model.name', {'dbpn'})
  for field in ('num_stages', 'features', 'feat0'):
    check_int(config, f'model.{field}', 1)
  for field in ('dense', 'residual'):
    if not isinstance(m[field], bool):
      fail(f'model.{field}', m[field], 'must be True or False')
  check_choice(config, 'model.lr_up', LR_UP_SOURCES)
  check_positive(config, 'model.input_scale')
  check_choice(config, 'dataset.augment.recipe', {'dsr'})
  scale = check_choice(config, 'dataset.augment.dsr_scale', set(SCALES) & set(PROJECTION))
  protocol = check_choice(config, 'dataset.augment.dsr_protocol', PROTOCOLS)
  if aug.crop_size[0] % scale or aug.crop_size[1] % scale:
    fail('dataset.augment.crop_size', tuple(aug.crop_size),
          f'must be a multiple of config.dataset.augment.dsr_scale={scale}')
  check_choice(config, 'loss.kind', LOSS_KINDS)
  ev = config.evaluation
  if not isinstance(ev.denormalize, bool):
    fail('evaluation.denormalize', ev.denormalize, 'must be True or False')
  if ev.denormalize and protocol != 'nyu':
    fail('evaluation.denormalize', ev.denormalize,
          f"needs config.dataset.augment.dsr_protocol='nyu' (only it min-max normalises), got "
          f'{protocol!r}')
  check_positive(config, 'evaluation.units_scale')
  check_int(config, 'evaluation.border', 0)
