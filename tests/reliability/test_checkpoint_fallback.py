"""A damaged newest checkpoint (files cut short, a flipped byte, missing metadata) is named in a
warning, moved aside, and the previous good one is restored -- never a silent restore of garbage;
a damaged-beyond-use folder, and a tree that does not fit, raise errors that name them."""
import glob
import os

import jax.numpy as jnp
import numpy as np
import pytest
from absl import logging

from jaxseg.training import checkpoint
from jaxseg.training.checkpoint import CheckpointMismatchError, Checkpointer


def _tree(k):
  return {'params': {'w': jnp.arange(64.0).reshape(8, 8) * k, 'b': jnp.full((8,), k)},
          'step': jnp.asarray(k, jnp.int32)}


def _files(step_dir):
  return sorted(f for f in glob.glob(os.path.join(step_dir, '**'), recursive=True)
                if os.path.isfile(f) and checkpoint.CHECKSUM_FILE not in f)


def _cut_three(step_dir):
  for f in sorted(_files(step_dir), key=os.path.getsize)[-3:]:
    with open(f, 'r+b') as fh:
      fh.truncate(os.path.getsize(f) // 2)


def _flip_byte(step_dir):
  biggest = max(_files(step_dir), key=os.path.getsize)
  data = bytearray(open(biggest, 'rb').read())
  data[len(data) // 2] ^= 0x01
  open(biggest, 'wb').write(bytes(data))


def _drop_metadata(step_dir):
  for f in _files(step_dir):
    if os.path.basename(f) in ('_METADATA', '_CHECKPOINT_METADATA'):
      os.remove(f)


def _drop_checksums_and_cut(step_dir):
  """Killed between Orbax's finalize and the checksum write, then damaged: Orbax's read fails."""
  os.remove(os.path.join(step_dir, checkpoint.CHECKSUM_FILE))
  _cut_three(step_dir)


@pytest.fixture
def workdir(tmp_path):
  c = Checkpointer(str(tmp_path))
  for k in (1, 2, 3):
    c.save(k, _tree(k))
  c.close()
  return tmp_path


@pytest.mark.parametrize('damage', [_cut_three, _flip_byte, _drop_metadata,
                                    _drop_checksums_and_cut])
def test_damaged_newest_falls_back_with_a_warning(workdir, damage, monkeypatch):
  warnings = []
  monkeypatch.setattr(logging, 'warning', lambda fmt, *a: warnings.append(fmt % a))
  newest = os.path.join(workdir, 'checkpoints', '3')
  damage(newest)
  c = Checkpointer(str(workdir))
  restored = c.restore(_tree(0))
  np.testing.assert_array_equal(restored['params']['w'], _tree(2)['params']['w'])
  assert int(restored['step']) == 2 and c.latest_step() == 2
  mine = [w for w in warnings if 'is damaged' in w]  # (Orbax may log its own too)
  assert len(mine) == 1 and newest in mine[0] and 'falling back' in mine[0]
  moved = os.listdir(os.path.join(workdir, checkpoint.DAMAGED_DIR))
  assert len(moved) == 1 and moved[0].startswith('3-')  # kept, not deleted
  c.save(3, _tree(30))  # the step can be saved again (the damaged folder is out of the way)
  c.close()
  again = Checkpointer(str(workdir)).restore(_tree(0))
  assert float(again['params']['b'][0]) == 30


def test_intact_checkpoints_restore_the_newest_without_warning(workdir, monkeypatch):
  warnings = []
  monkeypatch.setattr(logging, 'warning', lambda fmt, *a: warnings.append(fmt % a))
  restored = Checkpointer(str(workdir)).restore(_tree(0))
  assert int(restored['step']) == 3 and not [w for w in warnings if 'damaged' in w]
  assert checkpoint.verify_checksums(os.path.join(workdir, 'checkpoints', '3')) is None


def test_tree_mismatch_names_the_path_and_both_shapes(workdir):
  wrong = _tree(0)
  wrong['params']['w'] = jnp.zeros((8, 9))
  with pytest.raises(CheckpointMismatchError, match=r'params/w has shape \(8, 8\) in the '
                     r'checkpoint, \(8, 9\) in the model'):
    Checkpointer(str(workdir)).restore(wrong)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1', '2', '3']
