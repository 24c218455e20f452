"""Toy logits functions (N, h, w, 3) -> (N, h', w', C) for the inference tests, and NumPy helpers."""
import jax
import jax.numpy as jnp
import numpy as np

C = 4
_RNG = np.random.default_rng(0)
W_POINT = _RNG.normal(size=(3, C)).astype(np.float32)
B_POINT = _RNG.normal(size=(C,)).astype(np.float32)
K_3X3 = _RNG.normal(size=(3, 3, 3, C)).astype(np.float32)


def pointwise(x):
  """A 1x1 conv: translation- and flip-equivariant, so windows see exactly what the whole does."""
  return jnp.einsum('nhwc,ck->nhwk', x, W_POINT) + B_POINT


def strided(x):
  """A 3x3 conv (not flip-symmetric) then 2x2 average pooling: output stride 2 (floor)."""
  y = jax.lax.conv_general_dilated(x, jnp.asarray(K_3X3), (1, 1), 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return jax.lax.reduce_window(y, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), 'VALID') / 4


def shift_right(x):
  """Logit of class 0 at (y, x) = channel 0 of the pixel to its left (0 beyond the border)."""
  left = jnp.pad(x[:, :, :-1, :1], ((0, 0), (0, 0), (1, 0), (0, 0)))
  return jnp.concatenate([left, jnp.zeros_like(left)], axis=-1)


def window_mean(x):
  """Every pixel gets the window's mean of channel 0 as class-0 logit (class 1: 0)."""
  m = jnp.broadcast_to(x[..., :1].mean(axis=(1, 2), keepdims=True), x.shape[:3] + (1,))
  return jnp.concatenate([m, jnp.zeros_like(m)], axis=-1)


def softmax(z):
  z = np.asarray(z, np.float64)
  e = np.exp(z - z.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def sigmoid(v):
  return 1 / (1 + np.exp(-np.asarray(v, np.float64)))


def image(shape, seed=1):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)
