"""CTKT config checks (`configs/ctkt.py`): DSRNet, the 'dsr' recipe, loss, units, `config.ctkt`."""
from jaxseg.configlib import check_bool, check_choice, check_int, check_positive, fail
from jaxseg.data.formats.dsr import SCALES
from jaxseg.methods.ctkt.dsrnet import PROJECTION

LOSS_KINDS = ('l1', 'l2')
LR_UP_SOURCES = ('pipeline', 'jax')
PROTOCOLS = ('nyu', 'middlebury')


#: config.ctkt.teacher / teacher_granularity / affinity_norm (jaxseg.methods.ctkt.distill)
TEACHER_MODES = ('dynamic', 'dsr', 'de')
GRANULARITIES = ('batch', 'sample', 'block')
AFFINITY_NORMS = ('l1', 'l2')
STRUCTURE_GT = ('', 'sobel', 'canny')


def check_config(config):
  """configs/ctkt.py fields: DSRNet, the 'dsr' recipe, loss, units, then `config.ctkt`."""
  check_dsr(config)
  k = config.ctkt
  if not check_bool(config, 'ctkt.denet'):
    return
  check_bool(config, 'ctkt.spnet')
  check_int(config, 'ctkt.denet_features', 1)
  for field in ('lambda_p', 'lambda_a', 'lambda_s'):
    check_positive(config, f'ctkt.{field}', allow_zero=True)
  check_choice(config, 'ctkt.teacher', TEACHER_MODES)
  check_choice(config, 'ctkt.teacher_granularity', GRANULARITIES)
  check_int(config, 'ctkt.affinity_pool', 1)
  check_choice(config, 'ctkt.affinity_norm', AFFINITY_NORMS)
  if not 0 <= k.de_alpha <= 1:
    fail('ctkt.de_alpha', k.de_alpha, 'must be in [0, 1]')
  size = check_int(config, 'ctkt.ssim_filter_size', 1)
  crop = config.dataset.augment.crop_size
  if size > min(crop):
    fail('ctkt.ssim_filter_size', size, f'must be <= the training crop {tuple(crop)}')
  check_positive(config, 'ctkt.ssim_sigma')
  check_positive(config, 'ctkt.ssim_max_val')
  if k.spnet:
    check_int(config, 'ctkt.spnet_width', 1)
    check_int(config, 'ctkt.spnet_depth', 0)
    gt = check_choice(config, 'dataset.augment.structure_gt', STRUCTURE_GT)
    if not gt:
      fail('dataset.augment.structure_gt', gt, "SPNet (config.ctkt.spnet=True) needs the "
           "structure target: 'sobel' or 'canny'")


def check_dsr(config):
  """Depth super-resolution fields: DSRNet, the 'dsr' recipe, loss, units."""
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
