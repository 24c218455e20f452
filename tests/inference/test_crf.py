"""Dense CRF: exact dense mode vs a NumPy O(N^2) mean-field, lattice mode vs pydensecrf2 on real
frames (datasets.md §11.1 tolerances), shapes / jit / normalisation / batching / uniform inputs.

Compiles are the cost here: every test reuses one of a few (shape, parameter) combinations.
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxseg.inference import permutohedral
from jaxseg.inference.crf import CRF_DEFAULTS, dense_crf, dense_crf_batch

TINY = dict(CRF_DEFAULTS, bilateral_sxy=5.0, bilateral_srgb=10.0)  # spatial term matters at 10x12
REAL_SHAPE = (128, 256)  # both real frames are brought to this size: one compile
REAL_CLASSES = 6


def pydensecrf():
  return pytest.importorskip('pydensecrf.densecrf',
                             reason='pydensecrf2 (pip install pydensecrf2) is the reference CRF')


def numpy_dense_crf(image, probs, iterations, gaussian_weight, gaussian_sxy, bilateral_weight,
                    bilateral_sxy, bilateral_srgb):
  """Exact mean-field in float64: dense kernels with self-term, D^-1/2 K D^-1/2, Potts."""
  height, width, channels = probs.shape
  rows, cols = np.mgrid[:height, :width]
  position = np.stack([cols.ravel(), rows.ravel()], 1).astype(np.float64)
  colour = image.reshape(-1, 3).astype(np.float64)

  def normalised_kernel(features):
    kernel = np.exp(-0.5 * ((features[:, None] - features[None]) ** 2).sum(-1))
    norm = 1.0 / np.sqrt(kernel.sum(1))
    return norm[:, None] * kernel * norm[None]

  pairwise = gaussian_weight * normalised_kernel(position / gaussian_sxy)
  pairwise += bilateral_weight * normalised_kernel(
      np.concatenate([position / bilateral_sxy, colour / bilateral_srgb], 1))
  unary = -np.log(np.maximum(probs.reshape(-1, channels).astype(np.float64), 1e-5))

  def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)

  q = softmax(-unary)
  for _ in range(iterations):
    q = softmax(-unary + pairwise @ q)
  return q.reshape(height, width, channels)


def reference_crf(image, probs, iterations, gaussian_weight, gaussian_sxy, bilateral_weight,
                  bilateral_sxy, bilateral_srgb):
  """pydensecrf2 with the API sequence of datasets.md §11 (unary_from_softmax, C-contiguous)."""
  densecrf = pydensecrf()
  from pydensecrf.utils import unary_from_softmax  # pylint: disable=g-import-not-at-top
  height, width, channels = probs.shape
  crf = densecrf.DenseCRF2D(width, height, channels)
  crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(
      np.ascontiguousarray(probs.transpose(2, 0, 1)))))
  if gaussian_weight:
    crf.addPairwiseGaussian(sxy=gaussian_sxy, compat=gaussian_weight)
  if bilateral_weight:
    crf.addPairwiseBilateral(sxy=bilateral_sxy, srgb=bilateral_srgb,
                             rgbim=np.ascontiguousarray(image), compat=bilateral_weight)
  q = np.array(crf.inference(iterations)).reshape(channels, height, width)
  return q.transpose(1, 2, 0)


def colour_model_probs(image, labels, classes, noise, seed, colour_sigma=30.0):
  """Per-class isotropic Gaussian colour likelihood (means from the label map) with N(0, noise)
  added to the log-likelihoods; float32 (H, W, C)."""
  colour = image.reshape(-1, 3).astype(np.float64)
  flat = labels.ravel()
  log_lik = np.stack([-0.5 * ((colour - colour[flat == c].mean(0)) ** 2).sum(1) / 30.0 ** 2
                      for c in range(classes)], 1) / colour_sigma ** 2 * 30.0 ** 2
  log_lik += noise * np.random.default_rng(seed).normal(size=log_lik.shape)
  p = np.exp(log_lik - log_lik.max(1, keepdims=True))
  return (p / p.sum(1, keepdims=True)).reshape(labels.shape + (classes,)).astype(np.float32)


def tiny_case(seed=0):
  """10x12 image of three colour regions with a gradient and noise, its labels and noisy probs."""
  rng = np.random.default_rng(seed)
  labels = np.zeros((10, 12), np.int64)
  labels[:, 5:] = 1
  labels[6:, 8:] = 2
  base = np.array([[200, 60, 50], [60, 170, 80], [40, 70, 190]], np.float64)[labels]
  image = base + 4.0 * np.arange(12)[None, :, None] + rng.normal(0, 6, base.shape)
  image = np.clip(image, 0, 255).astype(np.uint8)
  return image, labels, colour_model_probs(image, labels, 3, noise=1.5, seed=seed, colour_sigma=80.0)


def compact_labels(labels, ignore, classes):
  """The classes - 1 most frequent labels -> 0.., everything else (ignore included) -> last."""
  values, counts = np.unique(labels[~np.isin(labels, ignore)], return_counts=True)
  keep = values[np.argsort(-counts)][:classes - 1]
  out = np.full(labels.shape, classes - 1, np.int64)
  for i, value in enumerate(keep):
    out[labels == value] = i
  return out


def real_frame(realdata, name):
  """(image uint8, labels) of a real frame at REAL_SHAPE (NYU: downscaled, centre rows)."""
  if name == 'cityscapes':
    stem = realdata / 'cityscapes'
    image = Image.open(stem / 'leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png')
    labels = Image.open(stem / 'gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelTrainIds.png')
    ignore = (255,)
  else:
    image = Image.open(realdata / 'nyuv2/classroom_rgb_00283.jpg')
    labels = Image.open(realdata / 'nyuv2/class13_00283.png')
    ignore = (0,)
  height, width = REAL_SHAPE
  scaled_height = round(image.height * width / image.width)
  image = np.array(image.convert('RGB').resize((width, scaled_height), Image.BILINEAR))
  labels = np.array(labels.resize((width, scaled_height), Image.NEAREST))
  top = (scaled_height - height) // 2
  return image[top:top + height], compact_labels(labels[top:top + height], ignore, REAL_CLASSES)


def agreement(q, ref):
  return float(np.abs(q - ref).mean()), float((q.argmax(-1) == ref.argmax(-1)).mean())


@functools.lru_cache(maxsize=None)
def tiny_result(**params):
  image, _, probs = tiny_case()
  return np.asarray(dense_crf(jnp.asarray(image), jnp.asarray(probs), **params))


def test_dense_mode_equals_numpy_dense_mean_field():
  image, _, probs = tiny_case()
  q = tiny_result(**TINY, method='dense')
  np.testing.assert_allclose(q, numpy_dense_crf(image, probs, **TINY), atol=1e-5)


def test_lattice_mode_against_numpy_dense_and_pydensecrf():
  image, labels, probs = tiny_case()
  exact = numpy_dense_crf(image, probs, **TINY)
  q = tiny_result(**TINY)
  mean_diff, argmax_agree = agreement(q, exact)
  assert mean_diff < 0.02 and argmax_agree > 0.97, (mean_diff, argmax_agree)
  ref = reference_crf(image, probs, **TINY)
  ref_diff, ref_agree = agreement(ref, exact)  # the reference's own lattice error
  assert ref_diff < 0.02 and ref_agree > 0.97, (ref_diff, ref_agree)
  mean_diff, argmax_agree = agreement(q, ref)
  assert mean_diff < 0.02 and argmax_agree > 0.97, (mean_diff, argmax_agree)
  # the CRF repairs the noisy unaries: better than their argmax against the region labels
  assert (q.argmax(-1) == labels).mean() > (probs.argmax(-1) == labels).mean()


def test_bilateral_lattice_reproduces_pydensecrf():
  """Same lattice (elevation, simplex, [1 2 1] blur, barycentric slice): float32 rounding only."""
  image, _, probs = tiny_case()
  params = dict(TINY, gaussian_weight=0.0)
  np.testing.assert_allclose(tiny_result(**params), reference_crf(image, probs, **params),
                             atol=2e-4)


@pytest.mark.parametrize('name', ['cityscapes', 'nyu'])
def test_real_frames_match_pydensecrf(realdata, name):
  image, labels = real_frame(realdata, name)
  probs = colour_model_probs(image, labels, REAL_CLASSES, noise=1.0, seed=1, colour_sigma=60.0)
  q = np.asarray(dense_crf(jnp.asarray(image), jnp.asarray(probs)))
  mean_diff, argmax_agree = agreement(q, reference_crf(image, probs, **CRF_DEFAULTS))
  assert mean_diff < 0.02 and argmax_agree > 0.97, (name, mean_diff, argmax_agree)
  assert agreement(q, probs)[0] > 0.05  # the CRF did change the probabilities


def test_shapes_normalisation_and_batch():
  image, _, probs = tiny_case()
  q = tiny_result(**TINY)
  chex.assert_shape(q, probs.shape)
  assert q.dtype == np.float32 and np.all(q >= 0)
  np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-5)
  other_image, _, other_probs = tiny_case(seed=1)
  batch = dense_crf_batch(jnp.asarray(np.stack([image, other_image])),
                          jnp.asarray(np.stack([probs, other_probs])), **TINY)
  chex.assert_shape(batch, (2,) + probs.shape)
  np.testing.assert_allclose(batch[0], q, atol=1e-6)
  single = dense_crf(jnp.asarray(other_image), jnp.asarray(other_probs), **TINY)
  np.testing.assert_allclose(batch[1], single, atol=1e-6)


def test_uniform_image_and_probs():
  """A flat image with flat probabilities stays flat; with a flat image the bilateral kernel is
  spatial only, so probabilities are smoothed, not moved towards any colour."""
  image = np.full((10, 12, 3), 128, np.uint8)
  flat = np.full((10, 12, 3), 1.0 / 3, np.float32)
  q = np.asarray(dense_crf(jnp.asarray(image), jnp.asarray(flat), **TINY))
  np.testing.assert_allclose(q, 1.0 / 3, atol=1e-6)


def test_enclosing_simplex_barycentric_coordinates():
  """Corners k = (d+1) r + k, or k - (d+1) on coordinates of rank >= d+1-k, reproduce each
  elevated point with non-negative weights summing to 1."""
  d = 5
  features = np.random.default_rng(0).uniform(-20, 20, (d, 500))
  elevated = permutohedral.elevation_matrix(d) @ features
  r, rank, weights = (np.asarray(a) for a in jax.jit(permutohedral.enclosing_simplex)(
      jnp.asarray(elevated, jnp.float32)))
  np.testing.assert_array_equal(np.sort(rank, axis=0), np.arange(d + 1)[:, None].repeat(500, 1))
  np.testing.assert_array_equal(r.sum(0), 0)  # the remainder-0 corner lies on the plane
  corners = [(d + 1) * r + np.where(rank < d + 1 - k, k, k - (d + 1)) for k in range(d + 1)]
  rebuilt = sum(w * c for w, c in zip(weights, corners))
  np.testing.assert_allclose(rebuilt, elevated, atol=2e-3)
  np.testing.assert_allclose(weights.sum(0), 1.0, atol=1e-5)
  assert weights.min() >= -1e-5
