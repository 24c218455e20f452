"""config.eval.inference parsing and validation (errors name the field)."""
import ml_collections
import pytest

from jaxseg.configlib import ConfigError
from jaxseg.inference import config as inference_config
from jaxseg.inference.config import InferenceConfig, from_config, parse, validate
from jaxseg.inference.multiscale import MS_SCALES


def run_config(**inference):
  c = ml_collections.ConfigDict(dict(method='segmentation'))
  if inference:
    c.eval = ml_collections.ConfigDict(dict(inference=inference))
  c.lock()
  return c


def test_defaults_and_a_full_slide_config():
  assert from_config(run_config()) == InferenceConfig()
  assert InferenceConfig().kwargs() == dict(mode='whole', crop=None, stride=None, scales=(1.0,),
                                            flip=False, resize_rule='size', window_batch=None)
  cfg = from_config(run_config(mode='slide', crop_size=(713, 713), stride=(), scales=MS_SCALES,
                               flip=True, window_batch=8))
  assert cfg.crop_size == (713, 713) and cfg.stride == (476, 476)  # ceil(2/3 crop)
  assert cfg.kwargs()['window_batch'] == 8 and cfg.kwargs()['crop'] == (713, 713)
  assert cfg.name == 'slide ms(0.5-1.75)+flip' and cfg.single_scale().name == 'slide ss'
  assert parse(dict(mode='slide', crop_size=473, stride=300)).stride == (300, 300)
  # 'whole' ignores crop_size / stride (so switching mode on the command line needs one flag).
  whole = parse(dict(mode='whole', crop_size=(65, 65)))
  assert whole.kwargs()['crop'] is None and whole.stride is None


@pytest.mark.parametrize('fields,message', [
    (dict(mode='foo'), "config.eval.inference.mode='foo': must be one of ['slide', 'whole']"),
    (dict(mode='slide'), "config.eval.inference.crop_size=None: is needed by mode='slide'"),
    (dict(mode='slide', crop_size=(0, 5)), 'config.eval.inference.crop_size=(0, 5): must be'),
    (dict(mode='slide', crop_size=(65, 65), stride=(70, 10)),
     'config.eval.inference.stride=(70, 10): must not exceed crop_size (65, 65)'),
    (dict(scales=()), 'config.eval.inference.scales=(): must be a non-empty sequence'),
    (dict(scales=(1.0, -0.5)), 'config.eval.inference.scales=(1.0, -0.5): must be'),
    (dict(flip='yes'), "config.eval.inference.flip='yes': must be True or False"),
    (dict(resize_rule='cv2'), "config.eval.inference.resize_rule='cv2': must be one of"),
    (dict(resize_rule='caffe_interp', scales=(1.0, 0.7071067811865476)),
     "0.7071067811865476 is not p/q with q <= 64, as resize_rule='caffe_interp' needs"),
    (dict(window_batch=-1), 'config.eval.inference.window_batch=-1: must be an integer >= 0'),
    (dict(crops=(5, 5)), "config.eval.inference.crops=(5, 5): is not a field of eval.inference"),
])
def test_errors_name_the_field(fields, message):
  with pytest.raises(ConfigError) as info:
    validate(run_config(**fields))
  assert message in str(info.value)


def test_parse_of_a_plain_dict_and_path():
  with pytest.raises(ConfigError, match=r"^config\.x\.mode='a'"):
    parse(dict(mode='a'), path='x')
  assert inference_config.PATH == 'eval.inference'
