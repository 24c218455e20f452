"""The bad-input corpus (tests/reliability/corpus_cases.py, one table): every case gives ONE
clear error -- raised by jaxseg's own code, naming the file / field / shape and what was
expected -- and leaves the prepared data and the checkpoints byte-identical."""
import dataclasses
import hashlib
import os
import re
import shutil
import sys

import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from corpus_cases import CASES, P, add  # pylint: disable=g-import-not-at-top,wrong-import-position

from jaxseg.configlib import ConfigError  # pylint: disable=wrong-import-position
from jaxseg.convert.torch_pickle import TorchNeededError, WeightFileError  # pylint: disable=wrong-import-position
from jaxseg.data import builders  # pylint: disable=wrong-import-position
from jaxseg.data.formats.common import DatasetLayoutError  # pylint: disable=wrong-import-position
from jaxseg.runner.errors import raised_by_jaxseg  # pylint: disable=wrong-import-position
from jaxseg.training.checkpoint import CheckpointError, Checkpointer  # pylint: disable=wrong-import-position
from tests.data.formats import test_gta5 as gta_w  # pylint: disable=wrong-import-position

CLEAR = (DatasetLayoutError, ConfigError, CheckpointError, WeightFileError, TorchNeededError,
         FileNotFoundError, KeyError, ValueError)
GTA = builders.BUILDERS['gta5']


def digest(folder: str) -> dict:
  out = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _tree(scale=1.0):
  return {'w': jnp.full((3, 4), scale), 'b': {'bias': jnp.zeros(4)}}


# -- cases on the protected prepared copy and checkpoints (paths from P) ---------------------
def _copy_ckpt(d):
  dst = os.path.join(d, 'run')
  shutil.copytree(P['ckpt_workdir'], dst)
  return dst


def _damage_all(workdir):
  for step in ('1', '2'):
    path = os.path.join(workdir, 'checkpoints', step, '_CHECKPOINT_METADATA')
    with open(path, 'r+b') as f:
      f.truncate(10)
  return Checkpointer(workdir)


add('checkpoint/shape_mismatch', lambda d: (
    lambda: Checkpointer(P['ckpt_workdir']).restore({**_tree(), 'w': jnp.zeros((3, 5))})),
    lambda d: 'w has shape (3, 4) in the checkpoint, (3, 5) in the model', 'does not fit')
add('checkpoint/missing_key', lambda d: (
    lambda: Checkpointer(P['ckpt_workdir']).restore({**_tree(), 'extra': jnp.zeros(2)})),
    lambda d: 'extra (shape (2,)) is missing from the checkpoint', 'does not fit')
add('checkpoint/unexpected_key', lambda d: (
    lambda: Checkpointer(P['ckpt_workdir']).restore({'w': jnp.zeros((3, 4))})),
    lambda d: 'the checkpoint has b/bias (shape (4,))', 'does not fit')
add('checkpoint/every_step_damaged', lambda d: (
    lambda c=_damage_all(_copy_ckpt(d)): c.restore(_tree())),
    lambda d: os.path.join(d, 'run', 'checkpoints'), 'every checkpoint .* was damaged')
add('checkpoint/given_step_damaged', lambda d: (
    lambda c=_damage_all(_copy_ckpt(d)): c.restore(_tree(), step=2)),
    lambda d: os.path.join(d, 'run', 'checkpoints', '2'), 'is damaged')
add('checkpoint/none', lambda d: (lambda: Checkpointer(d).restore(_tree())),
    lambda d: os.path.join(d, 'checkpoints'), 'no checkpoint')


def _shard_copy(d, damage):
  prep = P['prepared']
  dst = os.path.join(d, 'prepared')
  shutil.copytree(prep.prepared_dir, dst)
  final = os.path.join(dst, os.path.relpath(prep.path, prep.prepared_dir))
  shard = sorted(n for n in os.listdir(final) if 'array_record' in n)[0]
  damage(os.path.join(final, shard), final)
  copy = dataclasses.replace(prep, path=final, prepared_dir=dst)
  return lambda: copy.data_source('all')[0]


def _truncate(path, final):
  del final
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 3)


def _flip_bytes(path, final):
  del final
  data = bytearray(open(path, 'rb').read())
  for i in range(len(data) // 4, len(data) - 8, 7):
    data[i] ^= 0xFF
  open(path, 'wb').write(bytes(data))


for _name, _damage in {'truncated': _truncate, 'flipped': _flip_bytes,
                       'deleted': lambda p, f: os.remove(p),
                       'info_deleted': lambda p, f: os.remove(os.path.join(f, 'dataset_info.json')),
                       }.items():
  add(f'prepared/shard_{_name}', lambda d, g=_damage: _shard_copy(d, g),
      lambda d: os.path.join(d, 'prepared'), 'damaged prepared copy.*delete the folder')
add('prepared/split_not_prepared', lambda d: (lambda: P['prepared'].data_source('val')),
    lambda d: "split 'val' was not prepared", 'prepared:')


def _corrupt_over_existing(d):
  root = os.path.join(d, 'GTA5')
  shutil.copytree(P['gta_root'], root)
  bad = os.path.join(root, 'images', '00002.png')
  with open(bad, 'r+b') as f:
    f.truncate(30)
  return lambda: builders.prepare(GTA, GTA.builder_configs['default'], root,
                                  P['prepared'].prepared_dir, splits=('all',), force=True,
                                  threads=1)


add('prepare/corrupt_image_over_existing_copy', _corrupt_over_existing,
    lambda d: os.path.join(d, 'GTA5', 'images', '00002.png'), 'corrupt')


def _missing_data_dir(d):
  return lambda: builders.prepare(GTA, GTA.builder_configs['default'], os.path.join(d, 'none'),
                                  os.path.join(d, 'prepared2'), splits=('all',), threads=1)


add('prepare/data_dir_missing', _missing_data_dir, lambda d: os.path.join(d, 'none'),
    'not a directory')


@pytest.fixture(scope='module')
def protected(tmp_path_factory):
  root = tmp_path_factory.mktemp('protected')
  gta_root = root / 'GTA5'
  gta_w._write_gta(gta_root)
  prep = builders.prepare(GTA, GTA.builder_configs['default'], str(gta_root),
                          str(root / 'prepared'), splits=('all',), threads=1)
  ckpt = Checkpointer(str(root / 'run'))
  ckpt.save(1, _tree(1.0))
  ckpt.save(2, _tree(2.0))
  ckpt.close()
  P.update(prepared=prep, ckpt_workdir=str(root / 'run'), gta_root=str(gta_root))
  before = {k: digest(str(root / k)) for k in ('prepared', 'run', 'GTA5')}
  return root, before


def test_the_corpus_is_big_enough():
  assert len(CASES) >= 100, len(CASES)
  assert len({c.id for c in CASES}) == len(CASES), 'case ids must be unique'


@pytest.mark.parametrize('case', CASES, ids=lambda c: c.id)
def test_case_gives_one_clear_error(case, protected, tmp_path):
  root, before = protected
  d = str(tmp_path)
  thunk = case.make(d)
  with pytest.raises(Exception) as info:
    thunk()
  error = info.value
  assert isinstance(error, CLEAR), f'{type(error).__name__}: {error}'
  assert raised_by_jaxseg(error), (
      f'{type(error).__name__} escaped from a library: {error}\n{info.traceback[-1]}')
  message = str(error)
  assert case.names(d) in message, f'{case.names(d)!r} not named in: {message}'
  assert re.search(case.expect, message, re.S), f'{case.expect!r} not in: {message}'
  assert not os.path.exists('/tmp/jaxseg_corpus_PWNED'), 'a pickle payload ran'
  after = {k: digest(str(root / k)) for k in before}
  assert after == before, 'the prepared copy, the checkpoints or the dataset changed'


def test_counts(protected):
  """The closing counts: cases tried, and bytes of prepared data / checkpoints changed."""
  root, before = protected
  assert {k: digest(str(root / k)) for k in before} == before
  print(f'\ncorpus: {len(CASES)} cases; prepared data, checkpoints, dataset: 0 bytes changed')
