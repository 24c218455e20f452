"""Weight-file readers: torch ``.pth``, ``.npz`` and ``.safetensors`` -> flat ``{name: ndarray}``."""
import collections
import json
import os
import struct
from typing import Any, Dict, Optional

import ml_dtypes
import numpy as np

from jaxseg.convert.torch_pickle import WeightFileError, read_pth

StateDict = Dict[str, np.ndarray]

CONVERTED_FILE = 'weights.npz'  # what `python -m jaxseg.convert` writes into OUTDIR

SAFETENSORS_DTYPES = {
    'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'BF16': ml_dtypes.bfloat16,
    'I64': np.int64, 'I32': np.int32, 'I16': np.int16, 'I8': np.int8,
    'U64': np.uint64, 'U32': np.uint32, 'U16': np.uint16, 'U8': np.uint8, 'BOOL': np.bool_,
}
NESTED_KEYS = ('state_dict', 'model', 'model_state', 'model_state_dict')


def read_safetensors(path: str) -> StateDict:
  """Parse a ``.safetensors`` file: u64 LE header length, JSON header, raw little-endian data."""
  with open(path, 'rb') as f:
    blob = f.read()
  if len(blob) < 8:
    raise ValueError(f'{path}: too short for a safetensors file')
  (n,) = struct.unpack('<Q', blob[:8])
  if 8 + n > len(blob):
    raise ValueError(f'{path}: safetensors header length {n} exceeds the file size')
  try:
    header = json.loads(blob[8:8 + n].decode('utf-8'))
  except (UnicodeDecodeError, ValueError) as e:
    raise WeightFileError(f'{path}: damaged safetensors header ({e})') from None
  data = memoryview(blob)[8 + n:]
  out = collections.OrderedDict()
  for name, info in header.items():
    if name == '__metadata__':
      continue
    if info['dtype'] not in SAFETENSORS_DTYPES:
      raise ValueError(f'{path}: tensor {name!r} has unsupported dtype {info["dtype"]}')
    dtype = np.dtype(SAFETENSORS_DTYPES[info['dtype']])
    begin, end = info['data_offsets']
    arr = np.frombuffer(data[begin:end], dtype=dtype.newbyteorder('<')).astype(dtype)
    out[name] = arr.reshape(info['shape'])
  return out


def read_npz(path: str) -> StateDict:
  """Arrays of an ``.npz`` (never unpickled: object arrays are refused)."""
  try:
    with np.load(path, allow_pickle=False) as z:
      return collections.OrderedDict((k, z[k]) for k in z.files)
  except FileNotFoundError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (zipfile, zlib, numpy format errors)
    raise WeightFileError(f'{path}: damaged or not an .npz of plain arrays '
                          f'({type(e).__name__}: {str(e)[:200]})') from None


def unwrap_state_dict(obj: Any, path: str = '<object>') -> StateDict:
  """Descend into ``state_dict``/``model`` wrappers and strip a DataParallel ``module.`` prefix."""
  while isinstance(obj, dict):
    nested = [k for k in NESTED_KEYS if isinstance(obj.get(k), dict)]
    if not nested or all(isinstance(v, np.ndarray) for v in obj.values()):
      break
    obj = obj[nested[0]]
  if not isinstance(obj, dict):
    raise ValueError(f'{path}: expected a state_dict (a dict of tensors), got {type(obj).__name__}')
  bad = [k for k, v in obj.items() if not isinstance(v, np.ndarray)]
  if bad:
    raise ValueError(f'{path}: entries that are not tensors: {bad[:10]}'
                     f'{" ..." if len(bad) > 10 else ""} (expected a plain state_dict, or one '
                     f'nested under {"/".join(NESTED_KEYS)})')
  if obj and all(k.startswith('module.') for k in obj):
    obj = collections.OrderedDict((k[len('module.'):], v) for k, v in obj.items())
  return collections.OrderedDict(obj)


def read_weights(path: str, use_torch: Optional[bool] = None) -> StateDict:
  """Flat ``{name: ndarray}`` from a ``.pth``/``.pt``/``.bin``/``.ckpt``, ``.npz`` or
  ``.safetensors`` file, or from a directory holding ``weights.npz`` (converter output)."""
  if os.path.isdir(path):
    inner = os.path.join(path, CONVERTED_FILE)
    if not os.path.exists(inner):
      raise FileNotFoundError(f'{path} is a directory without {CONVERTED_FILE}')
    path = inner
  if not os.path.exists(path):
    raise FileNotFoundError(f'weight file not found: {path}')
  lower = path.lower()
  if lower.endswith('.npz'):
    return unwrap_state_dict(read_npz(path), path)
  if lower.endswith('.safetensors'):
    return unwrap_state_dict(read_safetensors(path), path)
  return unwrap_state_dict(read_pth(path, use_torch=use_torch), path)


def write_converted(flat: StateDict, outdir: str) -> str:
  """Write ``OUTDIR/weights.npz`` ('/'-joined keys; bfloat16 stored as float32). Returns its path."""
  os.makedirs(outdir, exist_ok=True)
  out = os.path.join(outdir, CONVERTED_FILE)
  arrays = {k: (v.astype(np.float32) if v.dtype == ml_dtypes.bfloat16 else v)
            for k, v in flat.items()}
  np.savez(out, **arrays)
  return out
