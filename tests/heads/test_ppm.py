"""Pyramid Pooling Module: PyTorch adaptive-pool bin edges and a hand-computed forward pass."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.heads import PyramidPooling
from jaxseg.nn.pool import adaptive_bin_edges

pytestmark = pytest.mark.usefixtures('fast_compile')


def test_bin_edges_are_pytorchs():
  """AdaptiveAvgPool2d: bin i spans [floor(i * n / b), ceil((i + 1) * n / b)); 5 into 2 and 3
  bins overlap, 90 into 6 is Caffe's kernel = stride 15, 60 into 3 is 20."""
  assert adaptive_bin_edges(5, 2) == ((0, 3), (2, 5))
  assert adaptive_bin_edges(5, 3) == ((0, 2), (1, 4), (3, 5))
  assert adaptive_bin_edges(5, 6) == ((0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 5))
  assert adaptive_bin_edges(90, 6) == tuple((15 * i, 15 * i + 15) for i in range(6))
  assert adaptive_bin_edges(60, 3) == ((0, 20), (20, 40), (40, 60))


def _lerp_matrix(n_in, n_out):
  """(n_out, n_in) align_corners=True bilinear weights, by hand."""
  m = np.zeros((n_out, n_in))
  for o in range(n_out):
    src = o * (n_in - 1) / (n_out - 1) if n_in > 1 else 0.0
    lo = min(int(np.floor(src)), n_in - 1)
    hi = min(lo + 1, n_in - 1)
    m[o, lo] += 1 - (src - lo)
    m[o, hi] += src - lo
  return m


def test_forward_against_hand_computed_pooling():
  """Identity 1x1 convs, identity BN (var = 1 - eps), positive input (ReLU a no-op): each
  branch is the adaptive mean over the PyTorch bins, upsampled with align_corners=True."""
  c, size, bins = 2, 5, (1, 2, 3)
  x = np.random.default_rng(0).uniform(0.1, 1.0, (1, size, size, c)).astype(np.float32)
  ppm = PyramidPooling(bins=bins, features=c, align_corners=True, bn_mode='train')
  shapes = jax.eval_shape(lambda: ppm.init(jax.random.key(0), jnp.asarray(x), train=False))
  eye = np.eye(c, dtype=np.float32)[None, None]
  fill = {'kernel': eye, 'scale': np.ones(c), 'bias': np.zeros(c), 'mean': np.zeros(c),
          'var': np.full(c, 1 - 1e-5)}
  variables = jax.tree_util.tree_map_with_path(
      lambda p, s: np.asarray(fill[p[-1].key], np.float32).reshape(s.shape), shapes)
  out = np.asarray(ppm.apply(variables, jnp.asarray(x), train=False))
  chex.assert_shape(out, (1, size, size, c * (1 + len(bins))))
  np.testing.assert_array_equal(out[..., :c], x)  # the input comes first
  for k, b in enumerate(bins):
    edges = adaptive_bin_edges(size, b)
    pooled = np.array([[x[0, r0:r1, c0:c1].mean(axis=(0, 1)) for c0, c1 in edges]
                       for r0, r1 in edges])  # (b, b, c)
    up = _lerp_matrix(b, size)
    want = np.einsum('ij,jkc,lk->ilc', up, pooled, up)
    np.testing.assert_allclose(out[0, ..., c * (k + 1):c * (k + 2)], want, rtol=1e-5, atol=1e-6)
