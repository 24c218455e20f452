"""Read PyTorch ``.pth`` / ``.pt`` files into NumPy arrays, with or without torch.

Zip-format files (``torch.save`` since torch 1.6) hold ``<name>/data.pkl`` plus one raw storage per
tensor in ``<name>/data/<key>``. Without torch they are read with ``zipfile`` and a restricted
unpickler that only knows tensors, parameters, storages and ``OrderedDict``. Legacy (pre-1.6)
pickles need torch itself; reading one without torch raises an error that says so.

Safety: a pickle can name any callable (`posix.system`, `builtins.eval`) to run on load. The
torch-free reader resolves only the globals of `_GLOBALS` and torch storage types; torch itself
is called with `weights_only=True`. Any other global raises `UnsafePickleError` naming it,
before anything of the file is run. Damaged files raise `WeightFileError` naming the file.
"""
import collections
import io
import pickle
import pickletools
import re
import struct
import zipfile
import zlib
from typing import Any, Dict, Optional

import ml_dtypes
import numpy as np

# Pickle of the legacy format's leading magic number (torch/serialization.py MAGIC_NUMBER).
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

# torch storage class name -> NumPy dtype.
STORAGE_DTYPES = {
    'FloatStorage': np.float32,
    'DoubleStorage': np.float64,
    'HalfStorage': np.float16,
    'BFloat16Storage': ml_dtypes.bfloat16,
    'LongStorage': np.int64,
    'IntStorage': np.int32,
    'ShortStorage': np.int16,
    'CharStorage': np.int8,
    'ByteStorage': np.uint8,
    'BoolStorage': np.bool_,
}


class TorchNeededError(RuntimeError):
  """The file can only be read with torch installed."""


class WeightFileError(ValueError):
  """A weight file that cannot be read (damaged, or not a torch file)."""


class UnsafePickleError(WeightFileError):
  """The pickle names a callable that is not a tensor type; it was refused, never called."""

  def __init__(self, path: str, global_name: str):
    self.path, self.global_name = path, global_name
    hint = ('; if you trust this file, load it in PyTorch and save only its state_dict '
            '(torch.save(model.state_dict(), ...))' if global_name.startswith('torch') else '')
    super().__init__(
        f'{path}: refused for safety: the pickle names the callable {global_name}, which is not '
        f'a tensor type (expected a state_dict of tensors: OrderedDict, torch._utils._rebuild_* '
        f'and torch.*Storage only). Nothing from the file was run{hint}.')


class _StorageType:
  """Stands in for ``torch.<X>Storage`` classes named by the pickle."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = np.dtype(STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage, offset, size, stride, *unused):
  """(flat storage array, element offset, shape, element strides) -> NumPy array (a copy)."""
  size, stride = tuple(size), tuple(stride)
  if not size:
    return np.array(storage[offset])
  if 0 in size:
    return np.zeros(size, storage.dtype)
  extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
  if len(size) != len(stride) or min(stride) < 0 or extent > storage.size:
    raise pickle.UnpicklingError(f'tensor of shape {size}, strides {stride}, offset {offset} '
                                 f'does not fit its storage of {storage.size} elements')
  itemsize = storage.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=size, strides=tuple(s * itemsize for s in stride), writeable=False)
  return np.array(view)


def _rebuild_parameter(data, *unused):
  return data


_GLOBALS = {
    ('collections', 'OrderedDict'): collections.OrderedDict,
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
  """Restricted unpickler: state_dict contents only, storages read lazily from the zip."""

  def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str, byteorder: str,
               path: str):
    super().__init__(io.BytesIO(data))
    self._archive, self._prefix, self._path = archive, prefix, path
    self._byteorder = '<' if byteorder == 'little' else '>'
    self._storages: Dict[str, np.ndarray] = {}

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _GLOBALS:
      return _GLOBALS[(module, name)]
    if module == 'torch' and name in STORAGE_DTYPES:
      return _StorageType(name)
    raise UnsafePickleError(self._path, f'{module}.{name}')

  def persistent_load(self, pid: Any) -> np.ndarray:
    if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'):
      raise pickle.UnpicklingError(f'{self._path}: unsupported persistent id {pid!r}')
    storage_type, key = pid[1], str(pid[2])
    if not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f'{self._path}: unsupported storage type {storage_type!r}')
    if key not in self._storages:
      raw = self._archive.read(f'{self._prefix}data/{key}')
      dtype = storage_type.dtype.newbyteorder(self._byteorder)
      self._storages[key] = np.frombuffer(raw, dtype=dtype).astype(storage_type.dtype)
    return self._storages[key]


def is_legacy_pickle(path: str) -> bool:
  """True for a pre-1.6 torch file (a pickle stream starting with torch's magic number)."""
  with open(path, 'rb') as f:
    head = f.read(64)
  try:
    return _NoGlobals(io.BytesIO(head)).load() == LEGACY_MAGIC
  except Exception:  # pylint: disable=broad-except
    return False


class _NoGlobals(pickle.Unpickler):
  def find_class(self, module, name):
    raise pickle.UnpicklingError(f'{module}.{name}')


def pickle_globals(path: str, max_pickles: int = 6) -> list[str]:
  """`module.name` of every global the pickle stream(s) of `path` would import (its data.pkl
  for a zip file), found by reading the opcodes (pickletools: nothing is imported or called).
  Stops at the first bytes that are not a pickle (the storages of a legacy file)."""
  out = []
  f = open(path, 'rb')  # pylint: disable=consider-using-with
  if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as archive:
      names = [n for n in archive.namelist() if n.endswith('data.pkl')]
      f.close()
      f = io.BytesIO(archive.read(names[0]) if names else b'')
  with f:
    for _ in range(max_pickles):
      strings = []
      try:
        for op, arg, _ in pickletools.genops(f):
          if op.name == 'GLOBAL':
            out.append(arg.replace(' ', '.'))
          elif op.name == 'STACK_GLOBAL' and len(strings) >= 2:
            out.append(f'{strings[-2]}.{strings[-1]}')
          elif isinstance(arg, str):
            strings.append(arg)
      except Exception:  # pylint: disable=broad-except
        break
  return out


def _allowed_global(name: str) -> bool:
  module, _, attr = name.rpartition('.')
  return (module, attr) in _GLOBALS or (module == 'torch' and attr in STORAGE_DTYPES)


def _refuse_unsafe_globals(path: str):
  for name in pickle_globals(path):
    if not _allowed_global(name):
      raise UnsafePickleError(path, name)


def read_zip_pth(path: str) -> Any:
  """Unpickle a zip-format torch file without torch; tensors become NumPy arrays."""
  try:
    return _read_zip_pth(path)
  except (WeightFileError, TorchNeededError, FileNotFoundError):
    raise
  except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, KeyError, ValueError, OSError,
          IndexError, TypeError, AttributeError, struct.error, zlib.error) as e:
    raise WeightFileError(f'{path}: damaged or not a torch state_dict file '
                          f'({type(e).__name__}: {str(e)[:200]})') from None


def _read_zip_pth(path: str) -> Any:
  if not zipfile.is_zipfile(path):
    _refuse_unsafe_globals(path)  # a plain or legacy pickle: name what it would call
    if is_legacy_pickle(path):
      raise TorchNeededError(
          f'{path} is a legacy (pre-1.6, non-zip) torch pickle; reading it needs torch '
          f'(pip install torch), or re-save it once with torch >= 1.6 / convert it to .npz')
    raise WeightFileError(f'{path} is neither a zip-format torch file nor a legacy torch pickle')
  with zipfile.ZipFile(path) as archive:
    pkl = [n for n in archive.namelist() if n.endswith('data.pkl') and n.count('/') == 1]
    if len(pkl) != 1:
      raise WeightFileError(f'{path}: expected one <name>/data.pkl in the zip, found {pkl}')
    prefix = pkl[0][:-len('data.pkl')]
    names = set(archive.namelist())
    byteorder = (archive.read(prefix + 'byteorder').decode().strip()
                 if prefix + 'byteorder' in names else 'little')
    return _Unpickler(archive.read(pkl[0]), archive, prefix, byteorder, path).load()


def _torch_to_numpy(obj: Any) -> Any:
  """Recursively turn torch tensors (incl. bfloat16) inside dicts/lists into NumPy arrays."""
  import torch  # pylint: disable=g-import-not-at-top
  if isinstance(obj, torch.Tensor):
    t = obj.detach().cpu()
    if t.dtype == torch.bfloat16:
      return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
    return t.numpy().copy()
  if isinstance(obj, dict):
    return collections.OrderedDict((k, _torch_to_numpy(v)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_torch_to_numpy(v) for v in obj)
  return obj


def torch_available() -> bool:
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


def read_pth(path: str, use_torch: Optional[bool] = None) -> Any:
  """Unpickled content of a torch file, tensors as NumPy arrays.

  ``use_torch=None`` uses torch when installed (``torch.load(weights_only=True)``), else the zip
  reader; ``True`` requires torch; ``False`` never imports it.
  """
  if use_torch is None:
    use_torch = torch_available()
  if not use_torch:
    return read_zip_pth(path)
  import torch  # pylint: disable=g-import-not-at-top
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except FileNotFoundError:
    raise
  except pickle.UnpicklingError as e:  # weights_only refused it: never retry unsafely
    found = re.search(r'GLOBAL ([\w.]+)', str(e))
    if found:
      raise UnsafePickleError(path, found.group(1)) from None
    _refuse_unsafe_globals(path)
    detail = [line for line in str(e).splitlines() if line.strip() and 'weights_only' not in line
              and 'documentation' not in line and 'file an issue' not in line]
    raise WeightFileError(f'{path}: refused: torch.load(weights_only=True) cannot read it as a '
                          f'state_dict of tensors ({"; ".join(detail)[:200] or "unsupported"}); '
                          f'nothing from the file was run') from None
  except (RuntimeError, EOFError, ValueError, OSError, KeyError) as e:
    try:
      _refuse_unsafe_globals(path)
    except (zipfile.BadZipFile, OSError, KeyError):
      pass
    raise WeightFileError(f'{path}: damaged or not a torch state_dict file '
                          f'({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ""})'
                          ) from None
  return _torch_to_numpy(obj)
