"""How reader arrays are stored in ArrayRecord (TFDS features that need no TensorFlow).

TFDS's `Image` feature encodes with TensorFlow, so images are stored as encoded bytes
(`Tensor(shape=(), dtype=object)`): the publisher's own file when the reader decoded one (exact,
compact, no re-encoding), else a PNG written by Pillow. `decode_image` repeats what
`formats.common.read_rgb` does, so a prepared image equals the reader's array bit for bit.
Integer and boolean maps are zlib-compressed tensors; float maps are stored raw (`bytes`:
depth and normals barely compress); float64 scalars use `bytes` (the default `none`
encoding would round them to float32).
"""
import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image


def image_feature():
  return tfds.features.Tensor(shape=(), dtype=np.object_)


def array_feature(dtype, ndim: int, channels: int | None = None):
  """A variable-size (H, W[, C]) tensor with the encoding that suits `dtype`."""
  dtype = np.dtype(dtype)
  shape = (None,) * ndim + ((channels,) if channels else ())
  encoding = 'bytes' if dtype.kind == 'f' else 'zlib'
  return tfds.features.Tensor(shape=shape, dtype=dtype.type, encoding=encoding)


def scalar_feature(dtype=np.float64):
  return tfds.features.Tensor(shape=(), dtype=np.dtype(dtype).type, encoding='bytes')


def encode_image(array: np.ndarray, path: str | None = None) -> bytes:
  """The publisher's file bytes when `path` is given, else a lossless PNG of `array`."""
  if path:
    with open(path, 'rb') as f:
      return f.read()
  buf = io.BytesIO()
  Image.fromarray(np.ascontiguousarray(array, np.uint8)).save(buf, format='PNG',
                                                              compress_level=1)
  return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
  """Encoded bytes -> (H, W, 3) uint8 RGB, exactly as `formats.common.read_rgb` decodes."""
  with Image.open(io.BytesIO(data)) as im:
    im.load()
    if im.mode != 'RGB':
      im = im.convert('RGB')
    return np.asarray(im, dtype=np.uint8).copy()
