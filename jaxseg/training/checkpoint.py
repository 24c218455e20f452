"""The one checkpoint path: an Orbax CheckpointManager over the TrainState pytree.

The input pipeline is stateless in the step (batch k is a pure function of the seed and
k), so restoring `state.step` also restores the pipeline's position exactly.
"""
import os

import jax
import orbax.checkpoint as ocp
from absl import logging


class Checkpointer:
  """Saves/restores TrainState under `<workdir>/checkpoints`, keeping the last `max_to_keep`."""

  def __init__(self, workdir: str, max_to_keep: int = 3):
    self.directory = os.path.abspath(os.path.join(workdir, 'checkpoints'))
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self):
    return self._manager.latest_step()

  def save(self, step: int, state, force: bool = False):
    saved = self._manager.save(int(step), args=ocp.args.StandardSave(state), force=force)
    if saved:
      logging.info('Saving checkpoint at step %d to %s', step, self.directory)
    return saved

  def restore(self, state_template, step: int | None = None):
    """Restores into the structure/shardings of `state_template` (a TrainState)."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
    restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    logging.info('Restored checkpoint of step %d from %s', step, self.directory)
    return restored

  def wait(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.wait_until_finished()
    self._manager.close()
