"""Fully connected CRF (Krähenbühl & Koltun 2011) with Potts compatibility, mean-field, in JAX.

Semantics of pydensecrf / pydensecrf2 (datasets.md §11.1): unary U = -log(max(p, 1e-5)),
Q_0 = softmax(-U), then `iterations` times Q = softmax(-U + sum_m w_m K~_m Q) with kernels
k_m(i, j) = exp(-|f_i - f_j|^2 / 2) (self-term included), symmetrically normalised
K~ = D^-1/2 K D^-1/2, D = diag(K 1). Features: Gaussian (smoothness) kernel (x, y) / sxy;
bilateral (appearance) kernel (x / sxy, y / sxy, r / srgb, g / srgb, b / srgb), x the column.

Filtering: the bilateral kernel through a permutohedral lattice (`permutohedral.py`, the same
approximation pydensecrf makes), the Gaussian one through an exact separable blur (truncated at
4 sxy; gaussian_filter='lattice' filters it on a 2-d lattice as pydensecrf does).
method='dense' builds the N x N kernels exactly, for small images and tests.
Defaults (`CRF_DEFAULTS`) are DeepLab v2's VOC parameters (deeplabv2.md §5).
"""
import functools
import math
from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.inference import permutohedral

CRF_DEFAULTS = dict(
    iterations=10,
    gaussian_weight=3.0, gaussian_sxy=1.0,                        # w2, gamma
    bilateral_weight=4.0, bilateral_sxy=67.0, bilateral_srgb=3.0,  # w1, alpha, beta
)
UNARY_CLIP = 1e-5  # pydensecrf unary_from_softmax clips probabilities here
# Sigmas size the lattice keys and the blur: static. Weights are traced (no recompile per weight).
_STATIC = ('iterations', 'gaussian_sxy', 'bilateral_sxy', 'bilateral_srgb', 'method',
           'gaussian_filter')


def gaussian_taps(sigma: float, size: int) -> np.ndarray:
  """exp(-t^2 / (2 sigma^2)) for t = -r..r, r = min(ceil(4 sigma), size - 1); float32 (2r+1,)."""
  radius = max(0, min(int(math.ceil(4.0 * sigma)), size - 1))
  t = np.arange(-radius, radius + 1, dtype=np.float64)
  return np.exp(-0.5 * (t / sigma) ** 2).astype(np.float32)


def _blur_axis(x: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
  radius = len(taps) // 2
  size = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (radius, radius)
  padded = jnp.pad(x, pad)
  out = 0.0
  for t, tap in enumerate(taps):
    out = out + float(tap) * lax.slice_in_dim(padded, t, t + size, axis=axis)
  return out


def gaussian_blur(x: jax.Array, sigma: float) -> jax.Array:
  """Separable Gaussian filter of x (H, W, C) with zero padding: sum_j exp(-|p_i-p_j|^2/2s^2) x_j."""
  x = _blur_axis(x, gaussian_taps(sigma, x.shape[0]), 0)
  return _blur_axis(x, gaussian_taps(sigma, x.shape[1]), 1)


def gaussian_blur_norm(height: int, width: int, sigma: float) -> np.ndarray:
  """(H, W) float32 `gaussian_blur` of ones, computed in NumPy: it is separable and static."""
  def ones_blurred(size):
    taps = gaussian_taps(sigma, size)
    radius = len(taps) // 2
    offsets = np.arange(size)[:, None] + np.arange(-radius, radius + 1)[None]
    return ((offsets >= 0) & (offsets < size)) @ taps.astype(np.float64)
  return np.outer(ones_blurred(height), ones_blurred(width)).astype(np.float32)


def softmax_classes(x: jax.Array) -> jax.Array:
  """Softmax over the last axis of x (N, C) as elementwise ops over its C columns.

  A `reduce` over the short class axis is handed by XLA:CPU to YNNPACK together with every
  producer of x (the lattice slice, the Gaussian blur), materialising their broadcast constants
  at (N, C) on each iteration; this form stays an ordinary loop fusion.
  """
  columns = [x[:, c] for c in range(x.shape[1])]
  peak = functools.reduce(jnp.maximum, columns)
  exp = jnp.exp(x - peak[:, None])
  total = functools.reduce(jnp.add, [exp[:, c] for c in range(x.shape[1])])
  return exp / total[:, None]


def _pixel_grid(height: int, width: int) -> Tuple[jax.Array, jax.Array]:
  rows, cols = jnp.meshgrid(jnp.arange(height, dtype=jnp.float32),
                            jnp.arange(width, dtype=jnp.float32), indexing='ij')
  return cols.reshape(-1), rows.reshape(-1)


def _features(image: jax.Array, sxy: float, srgb) -> Tuple[jax.Array, tuple, tuple]:
  """(N, d) features (x, y[, r, g, b]) / sigmas and their static bounds."""
  height, width = image.shape[:2]
  x, y = _pixel_grid(height, width)
  columns = [x / sxy, y / sxy]
  high = [(width - 1) / sxy, (height - 1) / sxy]
  if srgb is not None:
    colour = image.reshape(-1, 3).astype(jnp.float32) / srgb
    columns += [colour[:, 0], colour[:, 1], colour[:, 2]]
    high += [255.0 / srgb] * 3
  return jnp.stack(columns, axis=1), (0.0,) * len(high), tuple(high)


class _Message:
  """Normalised filtering K~ Q of (N, C) values for one kernel, state carried across iterations."""

  def __init__(self, kind, image, channels, sxy, srgb=None, method='lattice'):
    self.kind, self.shape = kind, image.shape[:2]
    if method == 'dense':
      self.kind = 'dense'
      features = _features(image, sxy, srgb)[0]
      dist = sum((f[:, None] - f[None, :]) ** 2 for f in features.T)  # (N, N), no cancellation
      kernel = jnp.exp(-0.5 * dist)
      norm = lax.rsqrt(jnp.sum(kernel, axis=1))
      self.kernel = norm[:, None] * kernel * norm[None, :]
      self.init = ()
    elif kind == 'separable':
      self.sxy = sxy
      self.norm = jnp.asarray(gaussian_blur_norm(*self.shape, sxy).reshape(-1, 1) ** -0.5)
      self.init = ()
    else:
      features, low, high = _features(image, sxy, srgb)
      self.lattice = permutohedral.build_lattice(features, low, high)
      ones = jnp.ones((features.shape[0], 1), jnp.float32)
      norm, _ = permutohedral.lattice_filter(self.lattice, ones,
                                             permutohedral.empty_tables(self.lattice, 1))
      self.norm = lax.rsqrt(norm)
      self.init = permutohedral.empty_tables(self.lattice, channels)

  def __call__(self, q: jax.Array, state):
    if self.kind == 'dense':
      return jnp.dot(self.kernel, q, precision=lax.Precision.HIGHEST), state
    if self.kind == 'separable':
      blurred = gaussian_blur((self.norm * q).reshape(self.shape + (-1,)), self.sxy)
      return self.norm * blurred.reshape(q.shape), state
    out, state = permutohedral.lattice_filter(self.lattice, self.norm * q, state)
    return self.norm * out, state


@functools.partial(jax.jit, static_argnames=_STATIC)
def dense_crf(image: jax.Array, probs: jax.Array, *,
              iterations: int = CRF_DEFAULTS['iterations'],
              gaussian_weight: float = CRF_DEFAULTS['gaussian_weight'],
              gaussian_sxy: float = CRF_DEFAULTS['gaussian_sxy'],
              bilateral_weight: float = CRF_DEFAULTS['bilateral_weight'],
              bilateral_sxy: float = CRF_DEFAULTS['bilateral_sxy'],
              bilateral_srgb: float = CRF_DEFAULTS['bilateral_srgb'],
              method: str = 'lattice', gaussian_filter: str = 'separable') -> jax.Array:
  """Dense-CRF refinement of class probabilities.

  image: (H, W, 3) uint8 RGB guide (the raw image, not mean-subtracted).
  probs: (H, W, C) float class probabilities (e.g. the softmax of upsampled logits).
  Returns (H, W, C) float32 probabilities after `iterations` mean-field steps; rows sum to 1.
  Sigmas and iterations are static (Python numbers); the weights may be traced.
  method: 'lattice' (permutohedral lattice, any size) or 'dense' (exact O(N^2), small images).
  gaussian_filter: 'separable' (exact blur) or 'lattice' (as pydensecrf), for method='lattice'.
  """
  if method not in ('lattice', 'dense') or gaussian_filter not in ('separable', 'lattice'):
    raise ValueError(f'unknown method={method!r} / gaussian_filter={gaussian_filter!r}')
  height, width, channels = probs.shape
  if image.shape != (height, width, 3):
    raise ValueError(f'image {image.shape} does not match probs {probs.shape}')
  unary = -jnp.log(jnp.maximum(probs.reshape(-1, channels).astype(jnp.float32), UNARY_CLIP))
  gaussian_kind = 'separable' if gaussian_filter == 'separable' else 'lattice'
  messages = [(gaussian_weight, _Message(gaussian_kind, image, channels, gaussian_sxy,
                                         method=method)),
              (bilateral_weight, _Message('lattice', image, channels, bilateral_sxy,
                                          bilateral_srgb, method=method))]

  def step(_, carry):
    q, states = carry
    energy = -unary
    new_states = []
    for (weight, message), state in zip(messages, states):
      out, state = message(q, state)
      energy = energy + weight * out
      new_states.append(state)
    return softmax_classes(energy), tuple(new_states)

  init = (softmax_classes(-unary), tuple(m.init for _, m in messages))
  q, _ = lax.fori_loop(0, iterations, step, init)
  return q.reshape(height, width, channels)


@functools.partial(jax.jit, static_argnames=_STATIC)
def dense_crf_batch(images: jax.Array, probs: jax.Array, **params) -> jax.Array:
  """`dense_crf` over a batch: images (B, H, W, 3) uint8, probs (B, H, W, C) -> (B, H, W, C).

  One image at a time (`lax.map`): the lattice's while loops have data-dependent trip counts,
  which vmap would turn into masked updates of every vertex table on every step.
  """
  return lax.map(lambda args: dense_crf(*args, **params), (images, probs))
