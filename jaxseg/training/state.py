"""The train state every method uses: one pytree, checkpointed whole."""
from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class TrainState:
  """Everything a train step reads and writes.

  Attributes:
    step: int32 scalar, number of completed train steps.
    params: trainable parameters. Multi-network methods use a dict of trees
      (e.g. `{'generator': ..., 'discriminator': ...}`) under one optimizer.
    batch_stats: BatchNorm running statistics ({} when the model has none).
    opt_state: optax state for `params`.
    rng: uint32[2] raw PRNG key; steps derive per-step keys with `step_rng`.
  """
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jax.Array

  @classmethod
  def create(cls, params, batch_stats, tx, rng):
    return cls(step=jnp.zeros((), jnp.int32), params=params,
               batch_stats=batch_stats if batch_stats is not None else {},
               opt_state=tx.init(params), rng=rng)


def step_rng(state: TrainState) -> jax.Array:
  """A key unique to this step, identical on every device (pure in `state`)."""
  return jax.random.fold_in(state.rng, state.step)
