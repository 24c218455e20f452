"""``config.eval.inference``: the inference mode of a run, parsed and validated.

  c.eval = ml_collections.ConfigDict(dict(inference=dict(
      mode='slide', crop_size=(513, 513), stride=(), scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75),
      flip=True, resize_rule='size', window_batch=0)))

Fields (all optional; a missing ``eval.inference`` means whole-image, single scale, no flip):
  mode          'whole' | 'slide'
  crop_size     (H, W) or an int, windows of 'slide' mode (ignored by 'whole')
  stride        (H, W) or an int; () = ceil(2/3 crop_size) (semseg)
  scales        image scales whose probabilities are averaged, e.g. (1.0,) or MS_SCALES
  flip          also average the horizontally flipped views
  resize_rule   how views are scaled: 'size' | 'pytorch_scale_factor' | 'caffe_interp'
  window_batch  windows per network call in 'slide' mode; 0 = all at once
Errors name the field: ``config.eval.inference.mode='foo': must be one of ['slide', 'whole']``.
"""
import dataclasses
import numbers
from typing import Any, Dict, Optional, Tuple

import ml_collections

from jaxseg.configlib import ConfigError
from jaxseg.inference.crf import CRF_DEFAULTS
from jaxseg.inference.multiscale import MODES
from jaxseg.inference.sliding import default_stride
from jaxseg.nn.resize import RESIZE_RULES, caffe_interp_factors

PATH = 'eval.inference'


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
  """Parsed ``config.eval.inference`` (see the module docstring)."""
  mode: str = 'whole'
  crop_size: Optional[Tuple[int, int]] = None
  stride: Optional[Tuple[int, int]] = None
  scales: Tuple[float, ...] = (1.0,)
  flip: bool = False
  resize_rule: str = 'size'
  window_batch: int = 0

  def kwargs(self) -> Dict[str, Any]:
    """Keyword arguments of ``predict_probs`` (add out_size, align_corners, num_classes)."""
    slide = self.mode == 'slide'
    return dict(mode=self.mode, crop=self.crop_size if slide else None,
                stride=self.stride if slide else None, scales=self.scales, flip=self.flip,
                resize_rule=self.resize_rule, window_batch=self.window_batch or None)

  def single_scale(self) -> 'InferenceConfig':
    """The same mode at scale 1.0 without flip (the 'ss' column next to 'ms+flip')."""
    return dataclasses.replace(self, scales=(1.0,), flip=False)

  @property
  def name(self) -> str:
    """Short label for reports, e.g. 'slide ms(0.5-1.75)+flip' or 'whole ss'."""
    scales = 'ss' if self.scales == (1.0,) else (
        f'ms({min(self.scales):g}-{max(self.scales):g})')
    return f'{self.mode} {scales}{"+flip" if self.flip else ""}'


class _Fail:

  def __init__(self, path: str):
    self.path = path

  def __call__(self, field: str, value, why: str):
    raise ConfigError(f'config.{self.path}.{field}={value!r}: {why}')


def _pair(fail, field: str, value, allow_empty: bool) -> Optional[Tuple[int, int]]:
  if value is None or (allow_empty and isinstance(value, (tuple, list)) and not value):
    return None
  pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value) \
      if isinstance(value, (tuple, list)) else None
  if pair is None or len(pair) != 2 or not all(
      isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in pair):
    fail(field, value, 'must be an integer >= 1 or a pair (H, W) of them'
         + (' (or () for the default)' if allow_empty else ''))
  return tuple(int(v) for v in pair)


def parse(inference, path: str = PATH) -> InferenceConfig:
  """InferenceConfig from a ConfigDict / dict of the fields (None -> the defaults); validates."""
  fail = _Fail(path)
  if inference is None:
    return InferenceConfig()
  fields = dict(inference)
  unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(InferenceConfig)})
  if unknown:
    fail(unknown[0], fields[unknown[0]], 'is not a field of eval.inference; expected '
         f'{[f.name for f in dataclasses.fields(InferenceConfig)]}')
  mode = fields.get('mode', 'whole')
  if mode not in MODES:
    fail('mode', mode, f'must be one of {sorted(MODES)}')
  crop = _pair(fail, 'crop_size', fields.get('crop_size'), allow_empty=True)
  if mode == 'slide' and crop is None:
    fail('crop_size', fields.get('crop_size'), "is needed by mode='slide'")
  stride = _pair(fail, 'stride', fields.get('stride'), allow_empty=True)
  if mode == 'slide':
    stride = stride or default_stride(crop)
    if any(s > c for s, c in zip(stride, crop)):
      fail('stride', fields.get('stride'), f'must not exceed crop_size {crop} (pixels would be '
           'left uncovered)')
  rule = fields.get('resize_rule', 'size')
  if rule not in RESIZE_RULES:
    fail('resize_rule', rule, f'must be one of {sorted(RESIZE_RULES)}')
  scales = fields.get('scales', (1.0,))
  if isinstance(scales, numbers.Real):
    scales = (scales,)
  if not isinstance(scales, (tuple, list)) or not scales or not all(
      isinstance(s, numbers.Real) and not isinstance(s, bool) and s > 0 for s in scales):
    fail('scales', scales, 'must be a non-empty sequence of numbers > 0')
  if rule == 'caffe_interp':
    for s in scales:
      try:
        caffe_interp_factors(float(s))
      except ValueError:
        fail('scales', scales, f"{s} is not p/q with q <= 64, as resize_rule='caffe_interp' "
             'needs')
  flip = fields.get('flip', False)
  if not isinstance(flip, bool):
    fail('flip', flip, 'must be True or False')
  window_batch = fields.get('window_batch', 0)
  if isinstance(window_batch, bool) or not isinstance(window_batch, numbers.Integral) or \
      window_batch < 0:
    fail('window_batch', window_batch, 'must be an integer >= 0 (0 = all windows at once)')
  return InferenceConfig(mode=mode, crop_size=crop, stride=stride if mode == 'slide' else None,
                         scales=tuple(float(s) for s in scales), flip=flip, resize_rule=rule,
                         window_batch=int(window_batch))


def from_config(config) -> InferenceConfig:
  """``config.eval.inference`` of a whole run config (absent -> whole image, 1.0, no flip)."""
  ev = config.get('eval', None) if hasattr(config, 'get') else None
  inference = ev.get('inference', None) if ev is not None and hasattr(ev, 'get') else None
  return parse(inference)




def eval_block(crf: bool = False, **inference) -> ml_collections.ConfigDict:
  """`config.eval` of a segmentation config: `inference` (whole image, one scale, no flip unless
  given) and the dense CRF (`crf` on/off, `crf_params` = DeepLab v2's VOC parameters)."""
  fields = dict(mode='whole', crop_size=(), stride=(), scales=(1.0,), flip=False,
                resize_rule='size', window_batch=0)
  fields.update(inference)
  return ml_collections.ConfigDict(dict(inference=fields, crf=crf, crf_params=dict(CRF_DEFAULTS)))


def crf_params(config):
  """The CRF keyword arguments when `config.eval.crf` is on, else None."""
  ev = config.get('eval', None) if hasattr(config, 'get') else None
  if ev is None or not ev.get('crf', False):
    return None
  params = dict(CRF_DEFAULTS)
  params.update(dict(ev.get('crf_params', {})))
  unknown = sorted(set(params) - set(CRF_DEFAULTS))
  if unknown:
    raise ConfigError(f'config.eval.crf_params.{unknown[0]}: not a CRF parameter; expected '
                      f'{sorted(CRF_DEFAULTS)}')
  return params


def validate(config) -> None:
  """Raises ConfigError naming the field if ``config.eval`` (inference, CRF) is invalid."""
  from_config(config)
  crf_params(config)
