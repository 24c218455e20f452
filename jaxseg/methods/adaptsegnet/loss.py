"""AdaptSegNet's losses: the GAN criterion on discriminator logits and D's accuracy.

Domain labels follow the released code: source = 0, target = 1 (the paper's z is flipped; the
two are equivalent, AdaptSegNet#8). Every loss is a mean over all D-output cells of the global
batch (`reduce.global_mean`), so jit, pmap and one device agree.

  'bce' (vanilla GAN): `BCEWithLogits(logits, label)`, stable form
      max(x, 0) - x * y + log(1 + exp(-|x|)).
  'ls'  (LS-GAN, `--gan LS`): `MSE(logits, label)` on the raw output.
"""
import jax
import jax.numpy as jnp

from jaxseg.losses.reduce import global_mean

SOURCE_LABEL = 0.0
TARGET_LABEL = 1.0
GAN_LOSSES = ('bce', 'ls')


def gan_loss(logits: jax.Array, label: float, kind: str = 'bce', axis_name=None) -> jax.Array:
  """Mean criterion of (N, h, w, 1) logits against the constant domain `label`."""
  x = logits.astype(jnp.float32)
  if kind == 'bce':
    per_cell = jnp.maximum(x, 0.0) - x * label + jnp.log1p(jnp.exp(-jnp.abs(x)))
  elif kind == 'ls':
    per_cell = jnp.square(x - label)
  else:
    raise ValueError(f'unknown GAN loss {kind!r}; expected one of {GAN_LOSSES}')
  return global_mean(jnp.sum(per_cell), per_cell.size, axis_name)


def domain_accuracy(logits: jax.Array, label: float, kind: str = 'bce',
                    axis_name=None) -> jax.Array:
  """Fraction of D-output cells that name the right domain: logit > 0 (BCE) or output > 0.5
  (LS-GAN) means 'target'."""
  threshold = 0.0 if kind == 'bce' else 0.5
  says_target = logits.astype(jnp.float32) > threshold
  correct = says_target if label == TARGET_LABEL else ~says_target
  return global_mean(jnp.sum(correct.astype(jnp.float32)), correct.size, axis_name)
