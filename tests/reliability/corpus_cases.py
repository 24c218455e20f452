"""The bad-input corpus: ONE table of cases, each `Case(id, make, names, expect)`.

`make(d)` writes whatever the case needs under the folder `d` and returns a thunk; calling it
must raise one clear error: a jaxseg exception raised by jaxseg's own code (not escaped from a
library), whose message names `names(d)` (the file, field or shape) and matches `expect`
(what was expected). Cases that touch the protected prepared copy / checkpoint get their paths
from `P` (filled by the test's fixture) and must leave them byte-identical.
"""
import dataclasses
import io
import os
import pickle
import shutil
import zipfile
from typing import Callable

import numpy as np
from PIL import Image

from jaxseg import configlib
from jaxseg.config_files import load_config
from jaxseg.convert import formats as wformats
from jaxseg.convert import load as wload
from jaxseg.convert import torch_pickle
from jaxseg.data import formats, validate
from jaxseg.data.formats import common, png
from jaxseg.runner import config_checks, preemption

P = {}  # 'prepared' (a Prepared), 'ckpt_workdir', 'gta_root': set by the test fixture
LAYOUT = 'test layout'


@dataclasses.dataclass
class Case:
  id: str
  make: Callable  # folder -> thunk
  names: Callable  # folder -> the text the message must contain
  expect: str      # regex the message must match (what was expected / what is wrong)


CASES = []


def case(id_, names, expect):
  def wrap(make):
    CASES.append(Case(id_, make, names if callable(names) else (lambda d, n=names: n), expect))
    return make
  return wrap


def add(id_, make, names, expect):
  CASES.append(Case(id_, make, names if callable(names) else (lambda d, n=names: n), expect))


# -- images: corrupt / truncated PNG and JPEG ----------------------------------------------
def _png_bytes(mode='RGB', size=(12, 9), bits=8):
  rng = np.random.default_rng(0)
  if mode == 'RGB':
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
  elif bits == 16:
    arr = rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16)
  else:
    arr = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format='PNG')
  return buf.getvalue()


def _jpeg_bytes():
  rng = np.random.default_rng(1)
  buf = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)).save(buf, format='JPEG')
  return buf.getvalue()


def _file(d, name, data):
  path = os.path.join(d, name)
  with open(path, 'wb') as f:
    f.write(data)
  return path


def _flip(data, where):
  b = bytearray(data)
  b[where] ^= 0x5A
  return bytes(b)


def _idat(data):
  return data.index(b'IDAT') + 10


_PNG, _JPG = _png_bytes(), _jpeg_bytes()
_DAMAGED_PNGS = {f'cut{k}': (lambda b, k=k: b[:int(len(b) * k / 100)]) for k in
                 (0, 10, 33, 50, 75, 90, 97)}
_DAMAGED_PNGS.update({'cut8bytes': lambda b: b[:8], 'flip_signature': lambda b: _flip(b, 1),
                      'flip_ihdr': lambda b: _flip(b, 18), 'flip_idat': lambda b: _flip(b, _idat(b)),
                      'random_bytes': lambda b: np.random.default_rng(2).bytes(len(b)),
                      'text': lambda b: b'not an image\n'})
for _name, _damage in _DAMAGED_PNGS.items():
  for _reader in (common.read_rgb, png.read_png):
    add(f'png/{_reader.__name__}/{_name}',
        lambda d, r=_reader, f=_damage: (lambda p=_file(d, 'x.png', f(_PNG)): r(p, LAYOUT)),
        lambda d: os.path.join(d, 'x.png'), r'corrupt|undecodable|unsupported|not a PNG')
for _k in (0, 5, 25, 50, 80, 95):
  add(f'jpeg/cut{_k}', lambda d, k=_k: (lambda p=_file(d, 'x.jpg', _JPG[:int(len(_JPG) * k / 100)]):
                                        common.read_rgb(p, LAYOUT)),
      lambda d: os.path.join(d, 'x.jpg'), r'corrupt or undecodable image')
add('jpeg/flip_soi', lambda d: (lambda p=_file(d, 'x.jpg', _flip(_JPG, 0)): common.read_rgb(
    p, LAYOUT)), lambda d: os.path.join(d, 'x.jpg'), 'corrupt or undecodable image')
add('image/missing_file', lambda d: (lambda: common.read_rgb(os.path.join(d, 'none.png'), LAYOUT)),
    lambda d: os.path.join(d, 'none.png'), 'missing file')
add('image/is_a_directory', lambda d: (lambda: common.read_rgb(d, LAYOUT)), lambda d: d,
    'missing file')

# -- wrong bit depth / channel count for label maps ----------------------------------------
_LABEL_MODES = {'rgb': ('RGB', 8), 'rgba': ('RGBA', 8), 'la': ('LA', 8), 'uint16': ('I;16', 16)}


def _label_image(mode, bits):
  rng = np.random.default_rng(3)
  if mode == 'I;16':
    return Image.fromarray(rng.integers(0, 300, (6, 7), dtype=np.uint16))
  arr = rng.integers(0, 20, (6, 7, len(mode)), dtype=np.uint8)
  return Image.fromarray(arr, mode)


for _name, (_mode, _bits) in _LABEL_MODES.items():
  def _make(d, mode=_mode, bits=_bits):
    path = os.path.join(d, 'label.png')
    _label_image(mode, bits).save(path)
    return lambda: common.read_index_png(path, LAYOUT)
  add(f'label/mode_{_name}', _make, lambda d: os.path.join(d, 'label.png'),
      r'expected a single-channel label image')
add('label/png16_wrong_channels',
    lambda d: (lambda p=_file(d, 'l.png', _png_bytes('L')): png.read_png(p, LAYOUT,
                                                                            channels=(2,))),
    lambda d: os.path.join(d, 'l.png'), 'channel index out of range')

# -- decoded examples: label ids, depth values, sizes (validate.check_example) -------------
_IMG = np.zeros((4, 5, 3), np.uint8)
_EXAMPLES = {
    'label/id_19_of_19': ({'image': _IMG, 'label': np.full((4, 5), 19, np.uint8)}, 19,
                          r'label ids \[19\] are out of range: expected 0\.\.18 or 255'),
    'label/id_254': ({'image': _IMG, 'label': np.full((4, 5), 254, np.uint8)}, 21,
                     r'label ids \[254\] are out of range'),
    'label/negative_id': ({'image': _IMG, 'label': np.full((4, 5), -1, np.int32)}, 21,
                          r'label ids \[-1\] are out of range'),
    'label/float_ids': ({'image': _IMG, 'label': np.zeros((4, 5), np.float32)}, 21,
                        'expected integer class ids'),
    'depth/nan': ({'image': _IMG, 'depth': np.full((4, 5), np.nan, np.float32)}, None,
                  r'20 NaN/Inf values, expected finite metres'),
    'depth/inf': ({'image': _IMG, 'depth': np.full((4, 5), np.inf, np.float32)}, None,
                  'NaN/Inf values'),
    'depth/-inf': ({'image': _IMG, 'depth': np.full((4, 5), -np.inf, np.float32)}, None,
                   'NaN/Inf values'),
    'depth/negative': ({'image': _IMG, 'depth': -np.ones((4, 5), np.float32)}, None,
                       r'20 negative values .*expected >= 0 metres'),
    'depth/integer': ({'image': _IMG, 'depth': np.ones((4, 5), np.int32)}, None,
                      'expected float metres'),
    'depth/3d': ({'image': _IMG, 'depth': np.ones((4, 5, 1), np.float32)}, None,
                 r'depth has shape \(4, 5, 1\), expected \(H, W\)'),
    'size/label': ({'image': _IMG, 'label': np.zeros((5, 4), np.uint8)}, 21,
                   'label size 4x5 differs from the image 5x4'),
    'size/depth': ({'image': _IMG, 'depth': np.ones((2, 5), np.float32)}, None,
                   'depth size 5x2 differs from the image 5x4'),
    'image/grey': ({'image': np.zeros((4, 5), np.uint8)}, None, r'expected \(H, W, 3\) uint8'),
    'image/rgba': ({'image': np.zeros((4, 5, 4), np.uint8)}, None, r'\(4, 5, 4\)'),
    'image/float': ({'image': np.zeros((4, 5, 3), np.float32)}, None, 'float32'),
}
for _name, (_ex, _n, _why) in _EXAMPLES.items():
  add(f'example/{_name}', lambda d, ex=_ex, n=_n: (
      lambda: validate.check_example(ex, os.path.join(d, 'frame_0001.png'), n, LAYOUT)),
      lambda d: os.path.join(d, 'frame_0001.png'), _why)

# -- dataset folders: missing / empty roots for every format -------------------------------
_SPLITS = {'ade20k': 'training', 'cityscapes': 'train', 'gta5': 'all', 'middlebury': 'FullSize',
           'nyuv2': 'train', 'sintel': 'training', 'synthia': 'all', 'tofmark': 'test',
           'voc': 'train'}
for _fmt, _split in _SPLITS.items():
  add(f'layout/{_fmt}/missing_root', lambda d, f=_fmt, s=_split: (
      lambda: formats.DATASETS[f].list_examples(os.path.join(d, 'nowhere'), s)),
      lambda d: os.path.join(d, 'nowhere'), 'missing|Expected layout')

  def _empty(d, f=_fmt, s=_split):
    os.makedirs(os.path.join(d, 'empty'), exist_ok=True)
    return lambda: formats.DATASETS[f].list_examples(os.path.join(d, 'empty'), s)
  add(f'layout/{_fmt}/empty_root', _empty, lambda d: os.path.join(d, 'empty'),
      'missing|no |Expected layout')

# -- config values: every constrained field (ConfigError naming config.<field>=<value>) -----
_BAD_FIELDS = {
    'configs/deeplabv2.py:smoke': [
        ('seed', -1), ('batch_size', 0), ('eval_batch_size', 0), ('num_train_steps', -1),
        ('log_every_steps', 0), ('eval_every_steps', -1), ('checkpoint_every_steps', 0),
        ('keep_checkpoints', 0), ('data_threads', 0), ('num_devices', -1),
        ('method', 'nope'), ('dataset.name', 'imagenet'), ('model.dtype', 'float8'),
        ('model.depth', 34), ('model.layout', 'tf'), ('model.output_stride', 5),
        ('model.bn_mode', 'sync'), ('model.name', 'unet'), ('optimizer.name', 'lion'),
        ('optimizer.schedule', 'cosine'), ('optimizer.learning_rate', 0.0),
        ('optimizer.weight_decay', -1e-4), ('init_layout', 'caffe2'),
        ('init_from', '/no/such/weights.pth'), ('dataset.num_train', 0),
        ('dataset.image_size', (4, 4)), ('dataset.augment.crop_size', (999, 999)),
        ('dataset.augment.std', (1.0, 0.0, 1.0)), ('model.aspp_rates', ()),
        ('model.msc_scales', (0.5, 1.0)), ('predict.num_examples', -1)],
    'configs/padnet.py:smoke': [
        ('model.tasks', 'all'), ('model.distillation', 'x'), ('model.features', 18),
        ('loss.depth_kind', 'huber'), ('loss.contour_pos_weight', 1.5),
        ('evaluation.min_depth', 0.0), ('evaluation.gt_range', 'wrap'),
        ('evaluation.contour_thresholds', 0), ('model.head_bn_mode', 'off')],
    'configs/ctkt.py:smoke': [
        ('model.name', 'srcnn'), ('dataset.augment.dsr_scale', 3), ('loss.kind', 'ssim'),
        ('evaluation.border', -1), ('evaluation.units_scale', 0.0), ('model.input_scale', -1.0),
        ('dataset.augment.dsr_protocol', 'x')],
}


def _bad_config(spec, field, value):
  def make(d):
    del d
    config = load_config(spec)
    configlib.get_field(config, field)  # the field exists: the case tests its range
    configlib.set_field(config, field, value)
    return lambda: config_checks.validate(config)
  return make


for _spec, _fields in _BAD_FIELDS.items():
  for _field, _value in _fields:
    add(f'config/{_spec.split("/")[1][:-3].replace(".py", "")}/{_field}={_value!r}',
        _bad_config(_spec, _field, _value), f'config.{_field}=', r'must|no such|larger|need')

# -- unknown config fields and variants ----------------------------------------------------
for _path, _near in [('no_such_field', 'config.'), ('optimizer.learnig_rate',
                                                     'config.optimizer.learning_rate'),
                     ('model.outputstride', 'config.model.output_stride'),
                     ('dataset.imagesize', 'config.dataset.image_size'),
                     ('num_train_step', 'config.num_train_steps')]:
  def _unknown(d, path=_path):
    del d
    config = load_config('configs/deeplabv2.py:smoke')

    return lambda: preemption.check_field_paths(config, ['seed', path])
  add(f'config/unknown/{_path}', _unknown, f'config.{_path}: no such field',
      f'nearest: .*{_near}')
for _spec in ('configs/deeplabv2.py:smokee', 'configs/ctkt.py:x3', 'configs/padnet.py:tiny'):
  add(f'config/unknown_variant/{_spec}', lambda d, s=_spec: (lambda: load_config(s)),
      _spec.split(':')[1], r'unknown variant')


# -- weight files ----------------------------------------------------------------------------
def _variables():
  return {'params': {'conv1': {'kernel': np.zeros((3, 3, 3, 4), np.float32)},
                     'fc': {'kernel': np.zeros((4, 2), np.float32),
                            'bias': np.zeros((2,), np.float32)}}}


def _npz(d, arrays, name='w.npz'):
  path = os.path.join(d, name)
  np.savez(path, **arrays)
  return path


_GOOD = {'params/conv1/kernel': np.ones((3, 3, 3, 4), np.float32),
         'params/fc/kernel': np.ones((4, 2), np.float32), 'params/fc/bias': np.ones(2, np.float32)}
_WEIGHTS = {
    'missing_key': ({k: v for k, v in _GOOD.items() if k != 'params/fc/bias'}, 'fc/bias'),
    'wrong_shape': ({**_GOOD, 'params/conv1/kernel': np.ones((3, 3, 1, 4), np.float32)},
                    r'conv1/kernel'),
    'unexpected_key': ({**_GOOD, 'params/extra/kernel': np.ones(3, np.float32)}, 'extra'),
    'wrong_layout': ({'conv1.weight': np.ones((4, 3, 3, 3), np.float32)}, r'conv1|layout|missing'),
}
for _name, (_arrays, _why) in _WEIGHTS.items():
  add(f'weights/{_name}', lambda d, a=_arrays: (
      lambda p=_npz(d, a): wload.load_into(_variables(), p, 'plain', name=p)),
      lambda d: os.path.join(d, 'w.npz'), _why)


class _Evil:
  def __reduce__(self):
    return (os.system, ('echo pwned > /tmp/jaxseg_corpus_PWNED',))


def _evil_zip(d):
  path = os.path.join(d, 'evil.pth')
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'w': _Evil()}, protocol=2))
  return path


def _legacy(d, obj):
  path = os.path.join(d, 'legacy.pth')
  with open(path, 'wb') as f:
    pickle.dump(torch_pickle.LEGACY_MAGIC, f, protocol=2)
    pickle.dump(obj, f, protocol=2)
  return path


_PTH = {
    'evil_zip': (_evil_zip, 'evil.pth', r'refused for safety.*posix\.system.*not a tensor type'),
    'evil_legacy': (lambda d: _legacy(d, _Evil()), 'legacy.pth', r'refused for safety.*system'),
    'legacy_pickle': (lambda d: _legacy(d, {'w': 1}), 'legacy.pth',
                      r'legacy .*needs torch|damaged or not a torch state_dict'),
    'empty_file': (lambda d: _file(d, 'e.pth', b''), 'e.pth', 'neither a zip|damaged'),
    'random_bytes': (lambda d: _file(d, 'r.pth', np.random.default_rng(5).bytes(300)), 'r.pth',
                     'neither a zip|damaged|refused'),
    'truncated_zip': (lambda d: _file(d, 't.pth', open(_evil_zip(d), 'rb').read()[:40]), 't.pth',
                      'neither a zip|damaged'),
    'zip_without_data_pkl': (lambda d: _zip(d, {'archive/other': b'x'}), 'z.pth',
                             r'expected one <name>/data\.pkl|damaged or not a torch'),
    'zip_missing_storage': (lambda d: _zip(d, {'archive/data.pkl': _storage_pickle()}), 'z.pth',
                            'damaged or not a torch state_dict'),
}


def _zip(d, members):
  path = os.path.join(d, 'z.pth')
  with zipfile.ZipFile(path, 'w') as z:
    for name, data in members.items():
      z.writestr(name, data)
  return path


def _u(text):
  return b'X' + len(text).to_bytes(4, 'little') + text.encode()


def _storage_pickle():
  """Protocol-2 opcodes of {'w': a 2-float tensor} whose storage file '0' is not in the zip."""
  storage = b'(' + _u('storage') + b'ctorch\nFloatStorage\n' + _u('0') + _u('cpu') + b'K\x02tQ'
  args = (b'(' + storage + b'K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rt')
  return (b'\x80\x02}' + _u('w') + b'ctorch._utils\n_rebuild_tensor_v2\n' + args + b'Rs.')


for _name, (_make_file, _fname, _why) in _PTH.items():
  for _torch in (False, True):
    add(f'weights/pth/{_name}/{"torch" if _torch else "no_torch"}',
        lambda d, m=_make_file, t=_torch: (lambda p=m(d): wformats.read_weights(
            p, use_torch=(None if t else False))),
        lambda d, f=_fname: os.path.join(d, f), _why)
add('weights/npz_object_array', lambda d: (
    lambda p=_file(d, 'o.npz', _object_npz()): wformats.read_weights(p)),
    lambda d: os.path.join(d, 'o.npz'), 'damaged|object|pickle')
add('weights/npz_truncated', lambda d: (
    lambda p=_file(d, 't.npz', open(_npz(d, _GOOD), 'rb').read()[:100]): wformats.read_weights(p)),
    lambda d: os.path.join(d, 't.npz'), 'damaged|not a')
add('weights/safetensors_short', lambda d: (
    lambda p=_file(d, 's.safetensors', b'\x01\x02'): wformats.read_weights(p)),
    lambda d: os.path.join(d, 's.safetensors'), 'too short')
add('weights/safetensors_bad_header', lambda d: (
    lambda p=_file(d, 's.safetensors', (5).to_bytes(8, 'little') + b'{"a":'): wformats.read_weights(
        p)), lambda d: os.path.join(d, 's.safetensors'), 'header|damaged')
add('weights/dir_without_weights', lambda d: (lambda: wformats.read_weights(d)), lambda d: d,
    'without weights.npz')
add('weights/missing_file', lambda d: (lambda: wformats.read_weights(os.path.join(d, 'no.pth'))),
    lambda d: os.path.join(d, 'no.pth'), 'not found')


def _object_npz():
  buf = io.BytesIO()
  np.savez(buf, w=np.array([{'a': 1}], dtype=object))
  return buf.getvalue()
