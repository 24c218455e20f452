"""DeepLab v2 config checks (`configs/deeplabv2.py`): model name, ASPP rates, MSC scales."""
from jaxseg.configlib import check_choice, fail
from jaxseg.methods.deeplabv2.model import MODEL_NAMES
from jaxseg.nn.resize import RESIZE_RULES


def check_aspp_msc(config):
  """ASPP and multi-scale-input fields, shared by every DeepLab v2-based method."""
  m = config.model
  if not m.aspp_rates or min(m.aspp_rates) < 1:
    fail('model.aspp_rates', tuple(m.aspp_rates), 'need at least one rate >= 1')
  branches = m.get('aspp_branches', 0) or 0
  if not 0 <= branches <= len(m.aspp_rates):
    fail('model.aspp_branches', branches, f'must be 0 (all) .. {len(m.aspp_rates)}')
  if m.get('msc', False):
    if 'msc_resize_rule' in m:
      check_choice(config, 'model.msc_resize_rule', RESIZE_RULES)
    if not m.msc_scales or m.msc_scales[0] != 1.0 or min(m.msc_scales) <= 0:
      fail('model.msc_scales', tuple(m.msc_scales), 'must start with 1.0 and be > 0')


def check_config(config):
  check_choice(config, 'model.name', MODEL_NAMES)
  check_aspp_msc(config)
