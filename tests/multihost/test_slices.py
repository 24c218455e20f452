"""Each process reads only its slice of every batch; evaluation counts every example once.

The slices the pipeline hands to processes 0..P-1 are disjoint and, in process order, make the
global batch a one-process run sees (train: across an epoch boundary; eval: with a padded last
batch, where a masked copy must never count)."""
import numpy as np
import pytest

from jaxseg.data import pipeline


class IdSource:
  """Example i is {'id': i}: what a process reads is visible in its batch."""

  def __init__(self, n):
    self.n = n

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {'id': np.int64(i)}


def train_ids(process_index, process_count, steps=3, batch=8, n=12):
  batches = pipeline.TrainBatches(IdSource(n), lambda e, rng: e, batch, seed=3,
                                  process_index=process_index, process_count=process_count)
  return [batches[k]['id'] for k in range(steps)]


@pytest.mark.parametrize('process_count', [2, 4])
def test_train_slices_are_disjoint_and_make_the_global_batch(process_count):
  reference = train_ids(0, 1)  # 3 steps x 8 over 12 examples: batches cross epochs
  per_process = [train_ids(p, process_count) for p in range(process_count)]
  for k, global_batch in enumerate(reference):
    slices = [ids[k] for ids in per_process]
    assert all(len(s) == 8 // process_count for s in slices)
    np.testing.assert_array_equal(np.concatenate(slices), global_batch)
    positions = [set(range(p * len(s), (p + 1) * len(s))) for p, s in enumerate(slices)]
    assert set.union(*positions) == set(range(8)) and sum(map(len, positions)) == 8
  # an epoch is a permutation: within it, no two processes read the same example
  first_epoch = np.concatenate(reference)[:12]
  assert sorted(first_epoch) == list(range(12))


def eval_ids(process_index, process_count, n=10, batch=8):
  out = list(pipeline.eval_batches(IdSource(n), lambda e: e, batch, process_index,
                                   process_count, num_threads=1))
  return [(b['id'], b['mask']) for b in out]


@pytest.mark.parametrize('process_count', [1, 2, 4])
def test_eval_pads_and_masks_so_each_example_counts_once(process_count):
  per_process = [eval_ids(p, process_count) for p in range(process_count)]
  assert len({len(b) for b in per_process}) == 1  # same number of batches: no hung collective
  counted = []
  for k in range(len(per_process[0])):
    ids = np.concatenate([b[k][0] for b in per_process])
    mask = np.concatenate([b[k][1] for b in per_process])
    assert len(ids) == 8
    counted.extend(ids[mask].tolist())
  assert sorted(counted) == list(range(10))  # 10 examples in 2 batches of 8: 6 padded copies
  if process_count == 4:  # the last batch's last two slices are padding only
    assert not per_process[3][1][1].any() and not per_process[2][1][1].any()


def test_batches_that_do_not_split_over_processes_are_refused():
  with pytest.raises(ValueError, match='batch_size=6 does not split over 4'):
    pipeline.TrainBatches(IdSource(8), lambda e, rng: e, 6, seed=0, process_index=0,
                          process_count=4)
  with pytest.raises(ValueError, match='eval_batch_size=6 does not split over 4'):
    next(pipeline.eval_batches(IdSource(8), lambda e: e, 6, 0, 4))
