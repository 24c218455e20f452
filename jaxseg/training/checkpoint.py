"""The one checkpoint path: an Orbax CheckpointManager over the TrainState pytree.

The input pipeline is stateless in the step (batch k is a pure function of the seed and
k), so restoring `state.step` also restores the pipeline's position exactly.

Integrity: once Orbax has finalized a step (its atomic rename), the next `save`, `wait` or
`close` writes `<step>/jaxseg_checksums.json` (size and SHA-256 of every file of the step). `restore` checks
the newest step against it first; a step whose files differ (cut short, a flipped byte, a
missing file) or that Orbax cannot read is moved aside to `<workdir>/checkpoints_damaged/`
with a warning naming it, and the previous step is tried, so a damaged newest checkpoint
never restores garbage and never stops a resume. A checkpoint whose tree does not fit the
model raises `CheckpointMismatchError` naming the first differing path and both shapes.
"""
import hashlib
import json
import os
import shutil
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

CHECKSUM_FILE = 'jaxseg_checksums.json'
DAMAGED_DIR = 'checkpoints_damaged'


class CheckpointError(RuntimeError):
  """No usable checkpoint (every one damaged), or a checkpoint that cannot be restored."""


class CheckpointMismatchError(CheckpointError):
  """The checkpoint's tree (paths, shapes, dtypes) does not fit the model's train state."""


def _files(step_dir: str) -> list[str]:
  """Relative paths of the files under a step folder (the checksum file excluded), sorted."""
  out = []
  for root, _, names in os.walk(step_dir):
    for name in names:
      rel = os.path.relpath(os.path.join(root, name), step_dir)
      if rel != CHECKSUM_FILE:
        out.append(rel)
  return sorted(out)


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()


def write_checksums(step_dir: str) -> None:
  """Writes `<step_dir>/jaxseg_checksums.json` (atomically: temporary file, then rename)."""
  table = {rel: [os.path.getsize(os.path.join(step_dir, rel)), _sha256(os.path.join(step_dir, rel))]
           for rel in _files(step_dir)}
  tmp = os.path.join(step_dir, f'.{CHECKSUM_FILE}.tmp{os.getpid()}')
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump({'files': table}, f)
  os.replace(tmp, os.path.join(step_dir, CHECKSUM_FILE))


def verify_checksums(step_dir: str) -> str | None:
  """None when the step's files match its checksum file, else what differs (one line).

  A step without a checksum file (killed between Orbax's finalize and the checksum write)
  is not verified here: Orbax's own read decides.
  """
  path = os.path.join(step_dir, CHECKSUM_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      table = json.load(f)['files']
  except (OSError, ValueError, KeyError, TypeError) as e:
    return f'unreadable {CHECKSUM_FILE} ({e})'
  for rel, (size, digest) in sorted(table.items()):
    full = os.path.join(step_dir, rel)
    if not os.path.isfile(full):
      return f'missing file {rel}'
    if os.path.getsize(full) != size:
      return f'{rel} has {os.path.getsize(full)} bytes, {size} were written'
    if _sha256(full) != digest:
      return f'{rel} differs from what was written (SHA-256 mismatch)'
  extra = sorted(set(_files(step_dir)) - set(table))
  if extra:
    return f'unexpected files {extra[:3]}'
  return None


def _path_str(path) -> str:
  return '/'.join(str(getattr(p, 'key', getattr(p, 'name', getattr(p, 'idx', p)))) for p in path)


def _leaf_shape(x):
  shape = getattr(x, 'shape', None)
  return None if shape is None else tuple(shape)


def check_tree_fits(saved, template, where: str) -> None:
  """Raises CheckpointMismatchError naming the first path whose presence or shape differs."""
  flat_saved = {_path_str(p): v for p, v in jax.tree_util.tree_flatten_with_path(saved)[0]}
  flat_template = {_path_str(p): v for p, v in
                   jax.tree_util.tree_flatten_with_path(template)[0]}
  for key in sorted(set(flat_saved) | set(flat_template)):
    if key not in flat_saved:
      raise CheckpointMismatchError(
          f'{where} does not fit the model: {key} (shape {_leaf_shape(flat_template[key])}) is '
          f'missing from the checkpoint. Is the workdir from another config? Use a new '
          f'--workdir, or the config that wrote it.')
    if key not in flat_template:
      raise CheckpointMismatchError(
          f'{where} does not fit the model: the checkpoint has {key} (shape '
          f'{_leaf_shape(flat_saved[key])}), which the model does not. Use a new --workdir, or '
          f'the config that wrote it.')
    a, b = _leaf_shape(flat_saved[key]), _leaf_shape(flat_template[key])
    if a is not None and b is not None and a != b:
      raise CheckpointMismatchError(
          f'{where} does not fit the model: {key} has shape {a} in the checkpoint, {b} in the '
          f'model. Use a new --workdir, or the config that wrote it.')


class Checkpointer:
  """Saves/restores TrainState under `<workdir>/checkpoints`, keeping the last `max_to_keep`."""

  def __init__(self, workdir: str, max_to_keep: int = 3):
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, 'checkpoints')
    self._max_to_keep = max_to_keep
    self._manager = self._new_manager()

  def _new_manager(self):
    options = ocp.CheckpointManagerOptions(max_to_keep=self._max_to_keep, create=True,
                                           enable_async_checkpointing=True)
    return ocp.CheckpointManager(self.directory, options=options)

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def _checksum_new_steps(self):
    """Waits for the save in flight, then checksums every finalized step that has none yet."""
    self._manager.wait_until_finished()
    if jax.process_index() != 0 or not os.path.isdir(self.directory):
      return
    for name in os.listdir(self.directory):
      step_dir = os.path.join(self.directory, name)
      if name.isdigit() and not os.path.exists(os.path.join(step_dir, CHECKSUM_FILE)):
        write_checksums(step_dir)

  def latest_step(self):
    return self._manager.latest_step()

  def all_steps(self):
    return sorted(self._manager.all_steps())

  def save(self, step: int, state, force: bool = False):
    """Starts an async save of `state` at `step` (after checksumming the previous one)."""
    self._checksum_new_steps()
    saved = self._manager.save(int(step), args=ocp.args.StandardSave(state), force=force)
    if saved:
      logging.info('Saving checkpoint at step %d to %s', step, self.directory)
    return saved

  def _move_aside(self, step: int, why: str):
    """Moves a damaged step out of the checkpoint folder (kept, never deleted) and warns."""
    src = self._step_dir(step)
    dst = os.path.join(self.workdir, DAMAGED_DIR, f'{step}-{time.strftime("%Y%m%d-%H%M%S")}')
    msg = (f'checkpoint {src} is damaged ({why}); moved it to {dst} and falling '
           f'back to the previous checkpoint')
    logging.warning('%s', msg)
    if jax.process_index() == 0:
      os.makedirs(os.path.dirname(dst), exist_ok=True)
      shutil.move(src, dst)
    self._manager.close()
    self._manager = self._new_manager()

  def _restore_one(self, step: int, abstract):
    """Restores one step -> state; raises CheckpointMismatchError, or CheckpointError with why
    it is damaged."""
    step_dir = self._step_dir(step)
    problem = verify_checksums(step_dir)
    if problem:
      raise CheckpointError(problem)
    try:
      saved = ocp.StandardCheckpointHandler().metadata(epath.Path(step_dir) / 'default').tree
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'unreadable metadata: {type(e).__name__}: {str(e)[:300]}') from e
    check_tree_fits(saved, abstract, f'checkpoint {step_dir}')
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(f'{type(e).__name__}: {str(e)[:300]}') from e

  def restore(self, state_template, step: int | None = None):
    """Restores into the structure/shardings of `state_template` (a TrainState).

    `step=None`: the newest checkpoint that is intact (damaged newer ones are moved aside with
    a warning). A given `step` is restored or raises. Raises CheckpointMismatchError when the
    tree does not fit, CheckpointError when no checkpoint is usable.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
    steps = [step] if step is not None else self.all_steps()[::-1]
    if not steps:
      raise FileNotFoundError(f'no checkpoint in {self.directory}')
    for k in steps:
      try:
        restored = self._restore_one(k, abstract)
      except CheckpointMismatchError:
        raise
      except CheckpointError as e:
        if step is not None:
          raise CheckpointError(f'checkpoint {self._step_dir(k)} is damaged: {e}') from None
        self._move_aside(k, str(e))
        continue
      logging.info('Restored checkpoint of step %d from %s', k, self.directory)
      return restored
    raise CheckpointError(f'every checkpoint in {self.directory} was damaged (moved to '
                          f'{os.path.join(self.workdir, DAMAGED_DIR)}); delete the workdir '
                          f'to start over')

  def wait(self):
    self._checksum_new_steps()

  def close(self):
    self._checksum_new_steps()
    self._manager.close()


def tree_digest(tree) -> str:
  """SHA-256 over the bytes, shapes and dtypes of a pytree's leaves (host arrays)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]:
    arr = np.asarray(leaf)
    h.update(f'{_path_str(path)}:{arr.dtype}:{arr.shape};'.encode())
    h.update(np.ascontiguousarray(arr).tobytes())
  return h.hexdigest()
