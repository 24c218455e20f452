"""Untrusted weight files: a pickle carrying a `__reduce__` payload is refused by name before
anything of it runs, by the torch-free reader, by torch (weights_only=True) and by the CLI."""
import os
import pickle
import zipfile

import pytest

from conftest import run_module
from jaxseg.convert import torch_pickle
from jaxseg.convert.torch_pickle import UnsafePickleError


class Payload:
  """Unpickling this runs `os.system(...)`, which would create the marker file."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f'touch {self.marker}',))


def _zip_pth(path, obj):
  with zipfile.ZipFile(path, 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps(obj, protocol=2))
    z.writestr('archive/version', '3\n')
    z.writestr('archive/byteorder', 'little')
  return str(path)


def _legacy_pth(path, obj):
  with open(path, 'wb') as f:
    pickle.dump(torch_pickle.LEGACY_MAGIC, f, protocol=2)
    pickle.dump(obj, f, protocol=2)
  return str(path)


@pytest.fixture(params=['zip', 'legacy'])
def evil(request, tmp_path):
  marker = tmp_path / 'PAYLOAD_RAN'
  obj = {'conv1.weight': Payload(marker)}
  write = _zip_pth if request.param == 'zip' else _legacy_pth
  return write(tmp_path / 'evil.pth', obj), marker


def test_the_payload_is_real(tmp_path):
  """The fixture's pickle does run its payload when unpickled without restriction."""
  marker = tmp_path / 'PAYLOAD_RAN'
  pickle.loads(pickle.dumps(Payload(marker)))  # the one deliberate unsafe load
  assert marker.exists()


def test_torch_free_reader_refuses_without_running(evil):
  path, marker = evil
  with pytest.raises(UnsafePickleError) as info:
    torch_pickle.read_pth(path, use_torch=False)
  assert info.value.global_name == 'posix.system'
  assert 'refused for safety' in str(info.value) and 'not a tensor type' in str(info.value)
  assert 'install torch' not in str(info.value)
  assert not marker.exists()


def test_torch_weights_only_refuses_without_running(evil):
  pytest.importorskip('torch', reason='torch not installed')
  path, marker = evil
  with pytest.raises(UnsafePickleError, match=r'posix\.system'):
    torch_pickle.read_pth(path, use_torch=True)
  assert not marker.exists()


@pytest.mark.parametrize('no_torch', [False, True])
def test_cli_says_plainly_and_exits_nonzero(tmp_path, no_torch):
  marker = tmp_path / 'PAYLOAD_RAN'
  path = _zip_pth(tmp_path / 'evil.pth', {'w': Payload(marker)})
  out = run_module('jaxseg.convert', '--from=torch', '--layout=plain',
                   *(['--no-torch'] if no_torch else []), path, str(tmp_path / 'out'),
                   timeout=300)
  assert out.returncode == 2
  assert 'Traceback' not in out.stderr
  assert 'posix.system' in out.stderr and 'refused for safety' in out.stderr
  assert 'install torch' not in out.stderr and 'weights_only` set to `False' not in out.stderr
  assert not marker.exists() and not (tmp_path / 'out' / 'weights.npz').exists()
