"""The one input pipeline: deterministic, resumable, per-host, with padded evaluation.

Training batch `k` is a pure function of (seed, k): global sample `k * B + j` reads example
`perm(seed, epoch)[pos]` and draws its augmentation from `default_rng([seed, k * B + j])`.
Resuming at step k therefore yields exactly the batches an uninterrupted run would see.
Each host builds only its slice `[p * B / P, (p + 1) * B / P)` of every global batch.
Loading runs in grain threads with prefetch.
"""
import functools
import math
from typing import Callable, Iterator, Sequence

import grain
import numpy as np


def _stack(examples: Sequence[dict]) -> dict:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


class TrainBatches:
  """Random access to the host-local part of every training batch."""

  def __init__(self, source, transform: Callable, global_batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    if global_batch_size % process_count:
      raise ValueError(f'batch_size={global_batch_size} does not split over {process_count} hosts')
    if len(source) == 0:
      raise ValueError('the training source is empty')
    self.source, self.transform, self.seed = source, transform, seed
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // process_count
    self.offset = process_index * self.local_batch_size

  @functools.lru_cache(maxsize=4)
  def _permutation(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self.seed, epoch]).permutation(len(self.source))

  def example_index(self, flat: int) -> int:
    epoch, pos = divmod(flat, len(self.source))
    return int(self._permutation(epoch)[pos])

  def __getitem__(self, step: int) -> dict:
    examples = []
    for j in range(self.offset, self.offset + self.local_batch_size):
      flat = step * self.global_batch_size + j
      rng = np.random.default_rng([self.seed, 1, flat])
      examples.append(self.transform(self.source[self.example_index(flat)], rng))
    return _stack(examples)

  def iterate(self, start_step: int, end_step: int, num_threads: int = 2,
              prefetch: int = 4) -> Iterator[dict]:
    """Batches start_step .. end_step-1 in order, loaded by grain threads."""
    return _iterate(self.__getitem__, start_step, end_step, num_threads, prefetch)


class MergedBatches:
  """Several `TrainBatches` read in step: batch k = `{name: parts[name][k]}` (e.g. one source-
  and one target-domain batch). Each part keeps its own seed, so it stays deterministic and
  resumable on its own."""

  def __init__(self, parts: dict):
    self.parts = dict(parts)

  def __getitem__(self, step: int) -> dict:
    return {name: part[step] for name, part in self.parts.items()}

  def iterate(self, start_step: int, end_step: int, num_threads: int = 2,
              prefetch: int = 4) -> Iterator[dict]:
    return _iterate(self.__getitem__, start_step, end_step, num_threads, prefetch)


def _iterate(load: Callable, start_step: int, end_step: int, num_threads: int,
             prefetch: int) -> Iterator[dict]:
  if end_step <= start_step:
    return iter(())
  ds = grain.MapDataset.range(start_step, end_step).map(load)
  options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
  return iter(ds.to_iter_dataset(options))


def num_eval_batches(num_examples: int, global_batch_size: int) -> int:
  return math.ceil(num_examples / global_batch_size)


def eval_batches(source, transform: Callable, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1, num_threads: int = 2,
                 limit: int | None = None) -> Iterator[dict]:
  """Every example exactly once; the last batch is padded with copies masked out (`mask`).

  All hosts produce the same number of batches, so collectives never hang.
  """
  if global_batch_size % process_count:
    raise ValueError(f'eval_batch_size={global_batch_size} does not split over '
                     f'{process_count} processes')
  n = len(source) if limit is None else min(limit, len(source))
  local = global_batch_size // process_count
  offset = process_index * local

  def load(b: int) -> dict:
    examples, mask = [], []
    for j in range(offset, offset + local):
      i = b * global_batch_size + j
      examples.append(transform(source[min(i, n - 1)]))
      mask.append(i < n)
    batch = _stack(examples)
    batch['mask'] = np.asarray(mask, bool)
    return batch

  ds = grain.MapDataset.range(num_eval_batches(n, global_batch_size)).map(load)
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2)))
