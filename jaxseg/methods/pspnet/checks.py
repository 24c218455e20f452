"""PSPNet config checks (`configs/pspnet.py`): model fields, PPM bins, auxiliary loss."""
from jaxseg.configlib import check_bool, check_choice, check_int, check_positive, fail
from jaxseg.methods.pspnet.model import MODEL_NAMES


def check_config(config):
  m = config.model
  check_choice(config, 'model.name', MODEL_NAMES)
  for field in ('use_ppm', 'aux', 'contract_dilation', 'align_corners'):
    check_bool(config, f'model.{field}')
  for field in ('head_features', 'aux_features'):
    check_int(config, f'model.{field}', 1)
  for field in ('stem_width', 'ppm_features'):
    check_int(config, f'model.{field}', 0)  # 0 = the default (width; C / len(bins))
  if m.use_ppm and (not m.bins or min(m.bins) < 1 or len(set(m.bins)) != len(m.bins)):
    fail('model.bins', tuple(m.bins), 'need distinct bin counts >= 1, e.g. (1, 2, 3, 6)')
  if not 0.0 <= m.dropout < 1.0:
    fail('model.dropout', m.dropout, 'must be in [0, 1)')
  check_positive(config, 'loss.aux_weight', allow_zero=True)
  if config.loss.aux_weight > 0 and not m.aux:
    fail('loss.aux_weight', config.loss.aux_weight,
         'needs the auxiliary head (config.model.aux=True), or set it to 0')
  if config.loss.get('at_logit_resolution', False):
    fail('loss.at_logit_resolution', True,
         'PSPNet upsamples the logits to the labels (semseg); set it to False')
