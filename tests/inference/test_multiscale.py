"""predict_probs: scales and flip averaged, at the label's resolution (jaxseg.inference)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference import toys
from jaxseg.inference import config as inference_config
from jaxseg.inference.multiscale import predict_labels, predict_probs
from jaxseg.nn import resize_bilinear

pytestmark = pytest.mark.usefixtures('fast_compile')

# 2 -> 4 bilinear upsampling, align_corners=False: src = (d + 0.5) / 2 - 0.5 = -.25, .25, .75, 1.25
UP_2_TO_4 = np.array([[1, 0], [.75, .25], [.25, .75], [0, 1]])


def up(m, a):
  """(N, 2, 2, C) -> (N, 4, 4, C) with the matrix m on both axes."""
  return np.einsum('ph,nhwc,qw->npqc', m, a, m)


def block_means(x):
  """(N, 4, 4, c) -> (N, 2, 2, c): scale 0.5 under PyTorch scale_factor (ratio exactly 2)."""
  return x.reshape(x.shape[0], 2, 2, 2, 2, x.shape[-1]).mean(axis=(2, 4))


def pointwise_np(x):
  return np.einsum('nhwc,ck->nhwk', x.astype(np.float64), toys.W_POINT) + toys.B_POINT


@pytest.fixture(scope='module')
def x44():
  return toys.image((2, 4, 4, 3), seed=3)


def test_multi_scale_whole_is_the_hand_computed_average(x44):
  """Scales 1.0 and 0.5 (4x4 -> 2x2 block means), whole mode: the 0.5 logits are upsampled to
  4x4 (weights 1, .75/.25, .25/.75, 1), then softmax; the two probability maps are averaged."""
  got = jax.jit(lambda x: predict_probs(toys.pointwise, x, scales=(1.0, 0.5),
                                        resize_rule='pytorch_scale_factor'))(x44)
  full = toys.softmax(pointwise_np(x44))
  half = toys.softmax(up(UP_2_TO_4, pointwise_np(block_means(x44))))
  chex.assert_shape(got, (2, 4, 4, toys.C))
  np.testing.assert_allclose(got, (full + half) / 2, atol=1e-6)
  assert np.abs(full - half).max() > 1e-2


def test_multi_scale_slide_resizes_probabilities(x44):
  """Slide mode (crop 2x2 on the 2x2 view, 3x3 on the 4x4): each scale's probabilities are
  resized to the output, not its logits."""
  got = predict_probs(toys.pointwise, jnp.asarray(x44), mode='slide', crop=(2, 2), stride=(1, 1),
                      scales=(1.0, 0.5), resize_rule='pytorch_scale_factor', num_classes=toys.C)
  full = toys.softmax(pointwise_np(x44))
  half = up(UP_2_TO_4, toys.softmax(pointwise_np(block_means(x44))))
  np.testing.assert_allclose(got, (full + half) / 2, atol=1e-6)


def test_flip_and_label_resolution():
  """Output at the label's size (7, 9) from a 6x8 image, flip averaged, corners aligned."""
  x = jnp.asarray(toys.image((1, 6, 8, 3), seed=4))
  direct = toys.softmax(resize_bilinear(toys.strided(x), (7, 9), True))
  mirrored = toys.softmax(resize_bilinear(toys.strided(x[:, :, ::-1]), (7, 9), True))[:, :, ::-1]
  got = predict_probs(toys.strided, x, flip=True, out_size=(7, 9), align_corners=True)
  np.testing.assert_allclose(got, (direct + mirrored) / 2, atol=1e-6)
  labels = predict_labels(toys.strided, x, flip=True, out_size=(7, 9), align_corners=True)
  np.testing.assert_array_equal(labels, np.argmax(got, axis=-1))
  assert labels.dtype == jnp.int32


def test_scaled_views_follow_the_resize_rule():
  """Views are resized by the rule: a 9x9 image at 0.75 is 6x6 ('size'), 7x7 ('caffe_interp')."""
  shapes = []

  def net(x):
    shapes.append(x.shape[1:3])
    return toys.pointwise(x)

  x = jnp.asarray(toys.image((1, 9, 9, 3)))
  for rule in ('size', 'caffe_interp'):
    probs = predict_probs(net, x, scales=(0.75,), resize_rule=rule)
    chex.assert_shape(probs, (1, 9, 9, toys.C))
  assert shapes == [(6, 6), (7, 7)]


def test_config_kwargs_drive_predict_probs(x44):
  """The lead's call: predict_probs(fn, image, **cfg.kwargs(), out_size=..., align_corners=...)."""
  cfg = inference_config.parse(dict(mode='slide', crop_size=2, stride=1, scales=(1.0, 0.5),
                                    resize_rule='pytorch_scale_factor', window_batch=3))
  got = predict_probs(toys.pointwise, jnp.asarray(x44), **cfg.kwargs(), out_size=(4, 4),
                      align_corners=False, num_classes=toys.C)
  want = predict_probs(toys.pointwise, jnp.asarray(x44), mode='slide', crop=(2, 2), stride=(1, 1),
                       scales=(1.0, 0.5), resize_rule='pytorch_scale_factor')
  chex.assert_trees_all_close(got, want, atol=1e-6)
  ss = cfg.single_scale()
  assert ss.scales == (1.0,) and not ss.flip and ss.mode == 'slide'


def test_argument_errors(x44):
  x = jnp.asarray(x44)
  with pytest.raises(ValueError, match='mode must be one of'):
    predict_probs(toys.pointwise, x, mode='tiles')
  with pytest.raises(ValueError, match='needs crop'):
    predict_probs(toys.pointwise, x, mode='slide')
  with pytest.raises(ValueError, match='resize_rule'):
    predict_probs(toys.pointwise, x, resize_rule='cv2')
  with pytest.raises(ValueError, match='NHWC'):
    predict_probs(toys.pointwise, x[0])
