"""Data parallelism: a 1-D `data` mesh for jit (the default) and pmap helpers.

Steps are written once as pure functions `step(state, batch) -> (state, out)`. Under
`jax.jit` over the mesh the batch is sharded on `data` and XLA inserts the collectives;
under `jax.pmap` the method was built with an `axis_name` and reduces with psum/pmean
itself. Both give the same numbers as one device (tests/training/test_parallel.py).
"""
import functools
from typing import Callable

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over the first `num_devices` devices (all when None or 0), axis `data`."""
  devices = jax.devices()
  n = num_devices or len(devices)
  if n > len(devices):
    raise ValueError(f'asked for {n} devices, only {len(devices)} present')
  if n != len(devices) and jax.process_count() > 1:
    raise ValueError(f'config.num_devices={n}: a multi-process job uses all {len(devices)} '
                     f'devices of its {jax.process_count()} processes (set 0)')
  return jax.make_mesh((n,), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices[:n])


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def put_batch(batch: dict, mesh) -> dict:
  """This process's slice of the global batch (NumPy, (B / process_count, ...)) -> global
  arrays (B, ...) sharded on the leading axis over every process's devices."""
  sharding = batch_sharded(mesh)
  local_devices = len(sharding.addressable_devices)
  for path, x in jax.tree_util.tree_flatten_with_path(batch)[0]:
    if np.shape(x)[0] % local_devices:
      raise ValueError(f'batch{jax.tree_util.keystr(path)}: this process\'s slice of {np.shape(x)[0]} examples does '
                       f'not split over its {local_devices} devices (the global batch size must '
                       f'be a multiple of the {mesh.size} devices)')
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                      batch)


def put_replicated(tree, mesh):
  return jax.device_put(tree, replicated(mesh))


def jit_step(step_fn: Callable, mesh, donate: bool = True) -> Callable:
  """`step_fn(state, batch) -> (state, out)` jitted over the mesh: state replicated, batch on `data`."""
  return jax.jit(step_fn,
                 in_shardings=(replicated(mesh), batch_sharded(mesh)),
                 out_shardings=(replicated(mesh), replicated(mesh)),
                 donate_argnums=(0,) if donate else ())


def jit_eval(eval_fn: Callable, mesh) -> Callable:
  """`eval_fn(state, batch) -> sums` jitted over the mesh (sums come back replicated)."""
  return jax.jit(eval_fn, in_shardings=(replicated(mesh), batch_sharded(mesh)),
                 out_shardings=replicated(mesh))


def shard_for_pmap(batch: dict, num_devices: int) -> dict:
  """(B, ...) -> (num_devices, B // num_devices, ...)."""
  def split(x):
    x = np.asarray(x)
    if x.shape[0] % num_devices:
      raise ValueError(f'batch of {x.shape[0]} does not split over {num_devices} devices')
    return x.reshape((num_devices, x.shape[0] // num_devices) + x.shape[1:])
  return jax.tree.map(split, batch)


def pmap_step(step_fn: Callable, axis_name: str) -> Callable:
  """Runs `step_fn(state, batch)` under pmap; state replicated in, replicated out."""
  return jax.pmap(step_fn, axis_name=axis_name)


def replicate(tree, num_devices: int):
  return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (num_devices,) + np.shape(x)), tree)


def unreplicate(tree):
  return jax.tree.map(lambda x: np.asarray(x)[0], tree)


@functools.lru_cache(maxsize=None)
def process_info() -> tuple[int, int]:
  return jax.process_index(), jax.process_count()
