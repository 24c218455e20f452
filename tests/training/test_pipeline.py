"""The input pipeline: determinism, resume position, host slicing, padded evaluation."""
import numpy as np
import pytest

from jaxseg.data import pipeline, recipes


class IndexSource:
  """Example i has image value i (uint8) and label i; meta like a real source."""

  def __init__(self, n, size=4):
    self.n, self.size = n, size
    self.meta = dict(num_classes=3, class_names=('a', 'b', 'c'), ignore_label=255)

  def __len__(self):
    return self.n

  def __getitem__(self, i):
    return {'image': np.full((self.size, self.size, 3), i, np.uint8),
            'label': np.full((self.size, self.size), i, np.int32)}


def ident(example, rng):
  out = dict(example)
  out['noise'] = np.asarray(rng.random(), np.float32)
  return out


def test_train_batches_are_a_pure_function_of_step():
  src = IndexSource(10)
  a = pipeline.TrainBatches(src, ident, 4, seed=3)
  b = pipeline.TrainBatches(src, ident, 4, seed=3)
  for step in (0, 1, 7):
    for k in ('image', 'label', 'noise'):
      np.testing.assert_array_equal(a[step][k], b[step][k])
  assert not np.array_equal(a[0]['label'], pipeline.TrainBatches(src, ident, 4, seed=4)[0]['label'])


def test_each_epoch_is_a_permutation():
  src = IndexSource(8)
  tb = pipeline.TrainBatches(src, ident, 4, seed=0)
  epoch0 = np.concatenate([tb[0]['label'][:, 0, 0], tb[1]['label'][:, 0, 0]])
  epoch1 = np.concatenate([tb[2]['label'][:, 0, 0], tb[3]['label'][:, 0, 0]])
  assert sorted(epoch0) == list(range(8)) and sorted(epoch1) == list(range(8))
  assert not np.array_equal(epoch0, epoch1)


def test_resumed_iteration_matches_uninterrupted():
  src = IndexSource(10)
  tb = pipeline.TrainBatches(src, ident, 2, seed=1)
  straight = list(tb.iterate(0, 6))
  resumed = list(tb.iterate(3, 6))
  assert len(straight) == 6 and len(resumed) == 3
  for x, y in zip(straight[3:], resumed):
    np.testing.assert_array_equal(x['label'], y['label'])
    np.testing.assert_array_equal(x['noise'], y['noise'])


def test_host_slices_partition_the_global_batch():
  src = IndexSource(20)
  whole = pipeline.TrainBatches(src, ident, 6, seed=2)[5]
  parts = [pipeline.TrainBatches(src, ident, 6, seed=2, process_index=p, process_count=3)[5]
           for p in range(3)]
  for k in ('label', 'noise'):
    np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])


def test_bad_host_split_is_rejected():
  with pytest.raises(ValueError, match='batch_size=5'):
    pipeline.TrainBatches(IndexSource(4), ident, 5, seed=0, process_count=2)


@pytest.mark.parametrize('n,batch,hosts', [(7, 4, 1), (8, 4, 1), (5, 4, 2), (1, 2, 2)])
def test_eval_sees_every_example_exactly_once(n, batch, hosts):
  src = IndexSource(n)
  seen = []
  counts = []
  for p in range(hosts):
    batches = list(pipeline.eval_batches(src, lambda e: e, batch, p, hosts))
    counts.append(len(batches))
    for b in batches:
      seen.extend(b['label'][b['mask'], 0, 0].tolist())
      assert b['label'].shape[0] == batch // hosts
  assert len(set(counts)) == 1, 'every host must run the same number of eval steps'
  assert sorted(seen) == list(range(n))


def test_train_transform_keeps_targets_aligned():
  """Label is a function of the image colour; any misalignment breaks the relation."""
  rng = np.random.default_rng(0)
  h, w = 24, 32
  label = np.kron(rng.integers(0, 5, (3, 4)), np.ones((8, 8))).astype(np.uint8)
  image = np.stack([label * 40, label * 40, label * 40], -1).astype(np.uint8)
  normals = np.zeros((h, w, 3), np.float32)
  normals[..., 0] = 1.0
  example = {'image': image, 'label': label, 'normals': normals}
  import ml_collections  # pylint: disable=g-import-not-at-top
  aug = ml_collections.ConfigDict(dict(scales=(0.5, 1.0, 1.5), scale_range=(), crop_size=(20, 20),
                                       flip=True, mean=(0., 0., 0.), std=(1., 1., 1.), bgr=False))
  t = recipes.make_train_transform(aug, ('image', 'label', 'normals'))
  flipped = 0
  for seed in range(12):
    out = t(example, np.random.default_rng(seed))
    assert out['image'].shape == (20, 20, 3) and out['label'].shape == (20, 20)
    valid = out['label'] != 255
    # Nearest-resized labels must match the (bilinearly resized) image on flat regions.
    img = out['image'][..., 0]
    interior = valid & (np.round(img / 40.0) == out['label'])
    assert interior.sum() > 0.8 * valid.sum()  # misaligned targets would match ~1/5
    pad = ~valid
    assert np.all(img[pad] == 0)
    nx = out['normals'][..., 0][valid]
    assert np.all((nx == 1.0) | (nx == -1.0))
    flipped += int(np.all(nx == -1.0))
  assert 0 < flipped < 12, 'flip should happen sometimes, and negate normals x'
