"""What a method supplies to the one train loop (`jaxseg.train.loop`).

A method owns its model(s), losses and pure steps; it never writes a loop, a checkpoint
or a data loader. Steps are pure functions of (state, batch). Built with `axis_name`, the
steps reduce across that axis with psum/pmean and run under `jax.pmap`; built without it
they run under `jax.jit` over a device mesh, where XLA inserts the collectives.
"""
import abc
from typing import Any, Callable, Sequence

import numpy as np

from jaxseg.train.state import TrainState


class Method(abc.ABC):
  """Base class of method tenants (segmentation, padnet, adaptsegnet, ctkt)."""

  #: Keys of the batch dict the pipeline must provide (training and evaluation).
  batch_keys: Sequence[str] = ('image', 'label')

  def __init__(self, config, meta: dict, axis_name: str | None = None):
    self.config = config
    self.meta = meta
    self.axis_name = axis_name

  @abc.abstractmethod
  def init_state(self, rng, batch: dict) -> TrainState:
    """Initial state from a key and an example (host-local) batch; jit-able."""

  @abc.abstractmethod
  def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """One optimisation step -> (new state, scalar metrics averaged over the global batch)."""

  @abc.abstractmethod
  def eval_step(self, state: TrainState, batch: dict) -> Any:
    """Per-batch sums (a pytree) that add up over batches and devices; honours `batch['mask']`."""

  @abc.abstractmethod
  def summarize(self, sums) -> tuple[dict, str]:
    """Host-side: summed eval pytree -> (scalar metrics, human-readable report)."""

  @abc.abstractmethod
  def predict_step(self, state: TrainState, batch: dict) -> dict:
    """Predictions at input resolution (e.g. `label` (B, H, W), `depth` (B, H, W))."""

  @abc.abstractmethod
  def render(self, example: dict, prediction: dict, raw_image: np.ndarray) -> np.ndarray:
    """One side-by-side uint8 panel (input, targets, predictions) for an example."""

  def train_transform(self) -> Callable:
    from jaxseg.data import transforms  # pylint: disable=g-import-not-at-top
    return transforms.make_train_transform(self.config.dataset.augment, self.batch_keys)

  def eval_transform(self) -> Callable:
    from jaxseg.data import transforms  # pylint: disable=g-import-not-at-top
    return transforms.make_eval_transform(self.config.dataset.augment,
                                          tuple(self.batch_keys) + ())
