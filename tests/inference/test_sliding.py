"""Sliding-window and whole-image inference (jaxseg.inference.sliding) on toy logits functions."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inference import toys
from jaxseg.inference import sliding
from jaxseg.nn import resize_bilinear

pytestmark = pytest.mark.usefixtures('fast_compile')


def test_window_grid_and_count_map_hand_computed():
  assert sliding.window_starts(10, 6, 4) == [0, 4]
  assert sliding.window_starts(11, 6, 4) == [0, 4, 5]  # last window flush with the border
  assert sliding.window_starts(6, 6, 4) == [0]
  assert sliding.default_stride((713, 473, 321)) == (476, 316, 214)
  # windows [0, 6), [4, 10), [5, 11) along H; [0, 6), [4, 10) along W
  rows = [1, 1, 1, 1, 2, 3, 2, 2, 2, 2, 1]
  cols = [1, 1, 1, 1, 2, 2, 1, 1, 1, 1]
  np.testing.assert_array_equal(sliding.count_map((11, 10), (6, 6), (4, 4)),
                                np.outer(rows, cols))
  assert sliding.crop_padding((5, 9), (8, 8)) == ((1, 2), (0, 0))
  assert sliding.crop_padding((5, 9), (8, 8), 'bottom_right') == ((0, 3), (0, 0))
  with pytest.raises(ValueError):
    sliding.window_starts(5, 6, 4)


def test_overlaps_average_each_windows_probabilities():
  """A window-global toy (class-0 logit = the window's mean) makes every window's probability a
  constant p_w, so each pixel must hold the mean of the p_w of the windows that cover it."""
  x = np.zeros((1, 1, 11, 3), np.float32)
  x[0, 0, :, 0] = np.arange(11)
  probs = np.asarray(sliding.slide_probs(toys.window_mean, jnp.asarray(x), crop=(1, 6),
                                         stride=(1, 4)))
  p = toys.sigmoid([np.mean(range(0, 6)), np.mean(range(4, 10)), np.mean(range(5, 11))])
  want = [p[0]] * 4 + [(p[0] + p[1]) / 2, p.mean()] + [(p[1] + p[2]) / 2] * 4 + [p[2]]
  chex.assert_shape(probs, (1, 1, 11, 2))
  np.testing.assert_allclose(probs[0, 0, :, 0], want, rtol=1e-6)


@pytest.mark.parametrize('flip', [False, True])
def test_slide_equals_whole_for_a_translation_equivariant_net(flip):
  """1x1 conv toy, odd sizes, overlapping windows, padding along H (7 < crop 8): identical."""
  x = jnp.asarray(toys.image((2, 7, 23, 3)))
  whole = sliding.whole_probs(toys.pointwise, x, flip=flip)
  slide = sliding.slide_probs(toys.pointwise, x, crop=(8, 9), stride=(5, 4), flip=flip,
                              num_classes=toys.C)
  chex.assert_shape(slide, (2, 7, 23, toys.C))
  chex.assert_trees_all_close(slide, whole, atol=1e-6)
  np.testing.assert_allclose(np.asarray(slide).sum(-1), 1, atol=1e-6)


def test_slide_equals_whole_when_the_crop_covers_the_image():
  """Output-stride-2 toy (not translation-equivariant): one window = the whole image."""
  x = jnp.asarray(toys.image((2, 12, 16, 3)))
  for out_size in [(12, 16), None]:
    whole = sliding.whole_probs(toys.strided, x, out_size, align_corners=True)
    slide = sliding.slide_probs(toys.strided, x, crop=(12, 16), out_size=out_size,
                                align_corners=True)
    chex.assert_trees_all_close(slide, whole, atol=1e-6)
  # Smaller windows see other pooling grids: no longer equal (the comparison is not vacuous).
  slide = sliding.slide_probs(toys.strided, x, crop=(9, 9), stride=(3, 7))
  assert np.abs(np.asarray(slide) - np.asarray(sliding.whole_probs(toys.strided, x))).max() > 1e-3


@pytest.mark.parametrize('position,first_column', [('center', 3.0), ('bottom_right', 0.0)])
def test_padding_value_and_position(position, first_column):
  """Image 5x6, crop 8x9: pad 3 columns. The shift-right toy's first column reads the pixel to
  its left: the pad value when padding is centred (1 column on the left), 0 (the toy's own
  border) when it is all at the right."""
  x = toys.image((1, 5, 6, 3))
  probs = np.asarray(sliding.slide_probs(toys.shift_right, jnp.asarray(x), crop=(8, 9),
                                         pad_value=3.0, pad_position=position))
  chex.assert_shape(probs, (1, 5, 6, 2))
  np.testing.assert_allclose(probs[0, :, 0, 0], toys.sigmoid(first_column), rtol=1e-6)
  np.testing.assert_allclose(probs[0, :, 1:, 0], toys.sigmoid(x[0, :, :-1, 0]), rtol=1e-5)


def test_flip_averages_the_flipped_view():
  x = jnp.asarray(toys.image((1, 6, 10, 3)))
  # A flip-equivariant net (1x1 conv): flip changes nothing.
  chex.assert_trees_all_close(sliding.whole_probs(toys.pointwise, x, flip=True),
                              sliding.whole_probs(toys.pointwise, x), atol=1e-6)
  # Not flip-symmetric (3x3 conv + pooling): the mean of both views, the flipped one flipped back.
  size = (6, 10)
  direct = toys.softmax(resize_bilinear(toys.strided(x), size, False))
  mirrored = toys.softmax(resize_bilinear(toys.strided(x[:, :, ::-1]), size, False))[:, :, ::-1]
  got = sliding.whole_probs(toys.strided, x, flip=True)
  np.testing.assert_allclose(got, (direct + mirrored) / 2, atol=1e-6)
  assert np.abs(direct - mirrored).max() > 1e-2
  slide = sliding.slide_probs(toys.strided, x, crop=size, flip=True)
  np.testing.assert_allclose(slide, (direct + mirrored) / 2, atol=1e-6)


def counted_net():
  """(jitted strided toy, list of the input shapes it was traced with)."""
  traces = []

  @jax.jit
  def net(x):
    traces.append(x.shape)
    return toys.strided(x)

  return net, traces


def test_windows_are_batched_and_traced_once():
  """Many windows, two images of different sizes, flip, chunks of 4 (the last one padded):
  the jitted logits function is traced once, and chunking does not change the result."""
  images = [jnp.asarray(toys.image((2, 15, 20, 3))), jnp.asarray(toys.image((2, 6, 13, 3), 2))]
  kw = dict(crop=(8, 8), stride=(4, 5), flip=True, num_classes=toys.C)
  net, traces = counted_net()
  maps = sliding.slide_maps(net, images, window_batch=4, **kw)
  n_windows = 2 * (3 * 4) + 2 * (1 * 2)  # 3x4 grid on 15x20, 1x2 on (padded) 8x13
  assert traces == [(8, 8, 8, 3)] and n_windows == 28  # 4 windows + their flips per call
  chex.assert_shape(maps, [(2, 15, 20, toys.C), (2, 6, 13, toys.C)])
  unchunked = sliding.slide_maps(toys.strided, images, **kw)
  chex.assert_trees_all_close(maps, unchunked, atol=1e-6)
  # Under an outer jit (the eval step) the network is traced once too; without num_classes
  # once more by eval_shape (which compiles nothing).
  for num_classes, n_traces in [(toys.C, 1), (None, 2)]:
    net, traces = counted_net()
    kw['num_classes'] = num_classes
    jax.jit(lambda a, b: sliding.slide_maps(net, [a, b], window_batch=4, **kw))(*images)
    assert len(traces) == n_traces, traces
