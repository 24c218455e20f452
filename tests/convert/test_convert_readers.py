"""Weight-file readers: torch-free zip .pth, legacy detection, safetensors, npz, unwrapping."""
import collections
import os
import pickle

import ml_dtypes
import numpy as np
import pytest

from convert.convert_helpers import write_safetensors
from jaxseg.convert import (TorchNeededError, read_pth, read_safetensors, read_weights,
                            read_zip_pth, unwrap_state_dict)
from jaxseg.convert.torch_pickle import LEGACY_MAGIC

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def test_zip_reader_on_committed_fixture_without_torch():
  """data/tiny_state_dict.pth (written by torch.save) read by zipfile + restricted unpickler."""
  raw = read_zip_pth(os.path.join(DATA, 'tiny_state_dict.pth'))
  assert raw['epoch'] == 5
  got = unwrap_state_dict(raw)
  with np.load(os.path.join(DATA, 'tiny_expected.npz')) as z:
    dtypes = dict(s.split('=') for s in z['__dtypes__'])
    expected = {k: z[k] for k in z.files if k != '__dtypes__'}
  assert list(got) == list(dtypes)  # order kept, 'module.' stripped, nested state_dict unwrapped
  for k, want in expected.items():
    assert str(got[k].dtype) == dtypes[k], k
    assert got[k].shape == want.shape, k
    np.testing.assert_array_equal(got[k].astype(want.dtype), want, err_msg=k)
  assert got['bf16'].dtype == ml_dtypes.bfloat16


def test_read_weights_dispatches_pth_without_torch():
  got = read_weights(os.path.join(DATA, 'tiny_state_dict.pth'), use_torch=False)
  assert 'conv.weight' in got and got['conv.weight'].shape == (2, 1, 3, 3)


def test_legacy_pickle_without_torch_names_torch(tmp_path):
  path = tmp_path / 'legacy.pth'
  path.write_bytes(pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2))
  with pytest.raises(TorchNeededError, match=r'legacy.*needs torch'):
    read_pth(str(path), use_torch=False)


def test_not_a_torch_file(tmp_path):
  path = tmp_path / 'junk.pth'
  path.write_bytes(b'hello world')
  with pytest.raises(ValueError, match='junk.pth'):
    read_pth(str(path), use_torch=False)


def test_safetensors_roundtrip(tmp_path):
  rng = np.random.default_rng(0)
  tensors = collections.OrderedDict([
      ('a.weight', rng.normal(size=(3, 2, 1, 1)).astype(np.float32)),
      ('b', rng.normal(size=(4,)).astype(np.float16)),
      ('c', rng.normal(size=(2, 2)).astype(ml_dtypes.bfloat16)),
      ('n', np.array(7, np.int64)),
  ])
  path = str(tmp_path / 'w.safetensors')
  write_safetensors(path, tensors, metadata={'format': 'pt'})
  got = read_safetensors(path)
  assert list(got) == list(tensors)
  for k, v in tensors.items():
    assert got[k].dtype == v.dtype and got[k].shape == v.shape
    np.testing.assert_array_equal(got[k], v)
  assert list(read_weights(path)) == list(tensors)


def test_npz_and_unwrap(tmp_path):
  path = str(tmp_path / 'w.npz')
  np.savez(path, **{'module.x': np.ones(2), 'module.y': np.zeros(3)})
  assert sorted(read_weights(path)) == ['x', 'y']
  nested = {'model': {'state_dict': {'w': np.ones(1)}}, 'epoch': 1}
  assert list(unwrap_state_dict(nested)) == ['w']
  with pytest.raises(ValueError, match=r"not tensors: \['epoch'\]"):
    unwrap_state_dict({'w': np.ones(1), 'epoch': 1}, 'f.pth')


def test_missing_file_names_path(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.pth'):
    read_weights(str(tmp_path / 'nope.pth'))


def test_zip_reader_matches_torch_load(tmp_path):
  torch = pytest.importorskip('torch', reason='compares the torch-free reader with torch.load')
  from jaxseg.bench.torch_resnet import TorchDeepLabV2, MSDeepLab, randomize  # pylint: disable=g-import-not-at-top
  net = randomize(MSDeepLab(TorchDeepLabV2(num_classes=3, width=4)))
  sd = net.state_dict()
  sd['extra.half'] = torch.randn(5, 3).half()[1:, ::2]
  sd['extra.bf16'] = torch.randn(3).bfloat16()
  path = str(tmp_path / 'net.pth')
  torch.save(sd, path)
  ours = read_pth(path, use_torch=False)
  theirs = read_pth(path, use_torch=True)
  assert list(ours) == list(sd) == list(theirs)
  for k in sd:
    assert ours[k].dtype == theirs[k].dtype and ours[k].shape == theirs[k].shape, k
    np.testing.assert_array_equal(ours[k], theirs[k], err_msg=k)
  legacy = str(tmp_path / 'legacy.pth')
  torch.save(sd, legacy, _use_new_zipfile_serialization=False)
  with pytest.raises(TorchNeededError, match='torch'):
    read_pth(legacy, use_torch=False)
  old = read_pth(legacy, use_torch=True)
  for k in sd:
    np.testing.assert_array_equal(old[k], theirs[k], err_msg=k)
