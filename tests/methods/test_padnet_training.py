"""PAD-Net trains: the loss falls over a few steps on a fixed batch, and a resumed run draws the
same batches (every key, through PAD-Net's random zoom / flip recipe) as an uninterrupted one."""
import jax
import numpy as np
import pytest

from jaxseg.data import pipeline, sources
from methods.test_padnet_method import batch, make_method, np_state, tiny_config  # pylint: disable=unused-import

pytestmark = pytest.mark.usefixtures('fast_compile')

STEPS = 8


def test_loss_falls_over_a_few_steps(batch):  # pylint: disable=redefined-outer-name
  method = make_method('C')
  state = np_state(method, batch)
  train = {k: v for k, v in batch.items() if k != 'mask'}
  step = jax.jit(method.train_step)
  losses, terms = [], []
  for _ in range(STEPS):
    state, metrics = step(state, train)
    losses.append(float(metrics['loss']))
    terms.append({k: float(v) for k, v in metrics.items() if k.startswith('loss_')})
  assert np.isfinite(losses).all(), losses
  assert losses[-1] < 0.7 * losses[0], losses
  # Each regression / classification term falls, not just their sum. The class-balanced contour
  # BCE (~0.28, balanced so that its minimum is far from 0) stays flat over 8 steps: bounded.
  falling = [k for k in terms[0] if k != 'loss_inter_contours']
  assert len(falling) == 5 and all(terms[-1][k] < terms[0][k] for k in falling), (terms[0],
                                                                                   terms[-1])
  assert terms[-1]['loss_inter_contours'] < 1.1 * terms[0]['loss_inter_contours']


def test_resumed_batches_equal_uninterrupted():
  c = tiny_config('C')
  c.dataset.augment.recipe = 'zoom'  # random zoom (depth / factor) and flip: the RNG matters
  src = sources.make_source(c.dataset, 'train')
  method = make_method('C')
  batches = pipeline.TrainBatches(src, method.train_transform(), 2, seed=c.seed)
  straight = list(batches.iterate(0, 5, num_threads=1))
  resumed = list(batches.iterate(3, 5, num_threads=1))
  assert len(resumed) == 2 and set(resumed[0]) == set(method.batch_keys)
  for want, got in zip(straight[3:], resumed):
    for k in want:
      np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  # Different steps draw different examples / augmentations (the test would see a constant).
  assert not np.array_equal(straight[3]['image'], straight[4]['image'])
