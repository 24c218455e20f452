"""Shared segmentation eval: single-scale and configured multi-scale + flip confusion matrices."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.config_files import load_config
from jaxseg.methods import build_method
from jaxseg.metrics import segmentation as seg_metrics
from jaxseg.nn import resize_bilinear
from jaxseg.runner import config_checks

pytestmark = pytest.mark.usefixtures('fast_compile')

K = 7


def _method_state(scales=(1.0, 0.75), flip=True):
  c = load_config('configs/deeplabv2.py:smoke')
  c.model.msc = False
  c.eval.inference.update(scales=scales, flip=flip)
  config_checks.validate(c)
  meta = {'num_classes': K, 'class_names': tuple(f'c{i}' for i in range(K)),
          'palette': np.zeros((K, 3), np.uint8), 'ignore_label': 255}
  method = build_method(c, meta)
  image = np.random.default_rng(0).normal(size=(2, 33, 41, 3)).astype(np.float32)
  state = method.init_state(jax.random.key(0), {'image': image})
  return method, state, image


def test_single_scale_and_tta_confusions():
  method, state, image = _method_state()
  label = np.random.default_rng(1).integers(0, K, (2, 33, 41)).astype(np.int32)
  batch = {'image': image, 'label': label, 'mask': np.array([True, True])}
  sums = jax.jit(method.eval_step)(state, batch)
  assert set(sums) == {'confusion', 'confusion_tta'}

  variables = {'params': state.params, 'batch_stats': state.batch_stats}

  def probs_at(x):
    logits = method.model.apply(variables, x, train=False)['logits']
    return jax.nn.softmax(resize_bilinear(logits, (33, 41), False), -1)

  def cm(pred):
    return seg_metrics.confusion_matrix(pred, label, K, 255)
  # Single scale: the model's logits upsampled to the labels, as before the inference suite.
  np.testing.assert_array_equal(sums['confusion'], cm(jnp.argmax(probs_at(image), -1)))
  # TTA: probabilities averaged over scale 1.0, 0.75 ('size' rule: 24x30) and their flips.
  small = resize_bilinear(jnp.asarray(image), (24, 30), False)
  views = [probs_at(image), probs_at(small),
           probs_at(image[:, :, ::-1])[:, :, ::-1], probs_at(small[:, :, ::-1])[:, :, ::-1]]
  mean = sum(views) / 4
  got = np.asarray(sums['confusion_tta'])
  want = np.asarray(cm(jnp.argmax(mean, -1)))
  # Argmax ties between near-equal averaged probabilities may fall either way: allow 0.5%.
  assert np.abs(got - want).sum() <= 0.005 * 2 * want.sum(), (got, want)
  assert got.sum() == want.sum() == label.size

  scalars, report = method.summarize(jax.device_get(sums))
  assert {'miou', 'tta/miou', 'tta/iou/c0', 'iou/c0'} <= set(scalars)
  assert 'whole ss: mIoU' in report and 'whole ms(0.75-1)+flip: mIoU' in report


def test_whole_single_scale_has_no_tta_view():
  method, state, image = _method_state(scales=(1.0,), flip=False)
  batch = {'image': image, 'label': np.zeros((2, 33, 41), np.int32),
           'mask': np.array([True, False])}
  sums = jax.jit(method.eval_step)(state, batch)
  assert set(sums) == {'confusion'} and int(sums['confusion'].sum()) == 33 * 41


def test_crf_view_and_raw_image_roundtrip():
  """eval.crf: a 'confusion_crf' from the dense CRF over the configured inference's
  probabilities, guided by the uint8 image the normalised batch came from."""
  from jaxseg.data import recipes  # pylint: disable=g-import-not-at-top
  from jaxseg.inference.crf import dense_crf_batch  # pylint: disable=g-import-not-at-top
  c = load_config('configs/deeplabv2.py:smoke')
  c.model.msc = False
  c.eval.crf = True
  c.eval.crf_params.iterations = 3
  config_checks.validate(c)
  meta = {'num_classes': K, 'class_names': tuple(f'c{i}' for i in range(K)),
          'palette': np.zeros((K, 3), np.uint8), 'ignore_label': 255}
  method = build_method(c, meta)
  rng = np.random.default_rng(2)
  raw = rng.integers(0, 256, (2, 21, 17, 3)).astype(np.uint8)
  image = np.stack([recipes.make_eval_transform(c.dataset.augment, ('image',))(
      {'image': r})['image'] for r in raw])
  np.testing.assert_array_equal(method.raw_image(jnp.asarray(image)), raw)  # BGR mean undone
  state = method.init_state(jax.random.key(0), {'image': image})
  label = rng.integers(0, K, (2, 21, 17)).astype(np.int32)
  sums = jax.jit(method.eval_step)(state, {'image': image, 'label': label,
                                           'mask': np.array([True, True])})
  assert set(sums) == {'confusion', 'confusion_crf'}
  probs = method.probs(state, jnp.asarray(image), (21, 17))
  want = seg_metrics.confusion_matrix(
      jnp.argmax(dense_crf_batch(jnp.asarray(raw), probs, **method.crf_params), -1), label, K, 255)
  np.testing.assert_array_equal(sums['confusion_crf'], want)
  scalars, report = method.summarize(jax.device_get(sums))
  assert 'crf/miou' in scalars and 'whole ss + CRF: mIoU' in report
