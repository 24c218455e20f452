"""Property-based: whatever bytes a PNG / JPEG / label file holds (cut anywhere, bytes flipped,
random), the readers either return the documented array or raise DatasetLayoutError naming the
file -- never another exception, never a wrong dtype or shape."""
import io
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from jaxseg.data import validate
from jaxseg.data.formats import common, png
from jaxseg.data.formats.common import DatasetLayoutError

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _encoded(fmt, mode, seed=0):
  rng = np.random.default_rng(seed)
  shape = (7, 9, 3) if mode == 'RGB' else (7, 9)
  arr = rng.integers(0, 256, shape, dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(arr, mode).save(buf, format=fmt)
  return buf.getvalue()


SOURCES = {'png_rgb': _encoded('PNG', 'RGB'), 'png_l': _encoded('PNG', 'L'),
           'jpeg': _encoded('JPEG', 'RGB')}


@st.composite
def damaged(draw):
  """(original name, damaged bytes): cut at a random length and/or bytes flipped."""
  name = draw(st.sampled_from(sorted(SOURCES)))
  data = bytearray(SOURCES[name])
  cut = draw(st.integers(0, len(data)))
  flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)),
                        max_size=4))
  for i, x in flips:
    data[i] ^= x
  if draw(st.booleans()):
    data = data[:cut]
  return name, bytes(data)


def _check(reader, path, want_ndim):
  try:
    arr = reader(path)
  except DatasetLayoutError as e:
    assert e.path == path and str(e).startswith(f'{e.reason}: {path}')
    return None
  assert arr.dtype in (np.uint8, np.uint16) and arr.ndim in want_ndim
  return arr


@SETTINGS
@given(case=damaged())
def test_rgb_reader_never_escapes(tmp_path, case):
  name, data = case
  path = os.path.join(tmp_path, f'x.{"jpg" if name == "jpeg" else "png"}')
  with open(path, 'wb') as f:
    f.write(data)
  arr = _check(lambda p: common.read_rgb(p, 'layout'), path, (3,))
  if arr is not None:
    validate.check_example({'image': arr}, path)


@SETTINGS
@given(case=damaged())
def test_png_and_label_readers_never_escape(tmp_path, case):
  _, data = case
  path = os.path.join(tmp_path, 'x.png')
  with open(path, 'wb') as f:
    f.write(data)
  _check(lambda p: common.read_index_png(p, 'layout'), path, (2,))
  _check(lambda p: png.read_png(p, 'layout'), path, (2, 3))  # (H, W) or (H, W, C)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path, data):
  path = os.path.join(tmp_path, 'r.png')
  with open(path, 'wb') as f:
    f.write(data)
  _check(lambda p: common.read_rgb(p, 'layout'), path, (3,))
  try:
    png.read_png(path, 'layout')
  except DatasetLayoutError as e:
    assert e.path == path


@SETTINGS
@given(labels=st.lists(st.integers(-3, 300), min_size=1, max_size=20),
       num_classes=st.integers(1, 40))
def test_label_range_check_matches_the_rule(labels, num_classes):
  label = np.asarray(labels, np.int32).reshape(1, -1)
  image = np.zeros((1, label.shape[1], 3), np.uint8)
  ok = all(0 <= v < num_classes or v == 255 for v in labels)
  try:
    validate.check_example({'image': image, 'label': label}, 'f.png', num_classes)
    assert ok
  except DatasetLayoutError as e:
    assert not ok and 'out of range' in str(e) and e.path == 'f.png'
