"""CTKT's training-time networks beside DSRNet (ctkt_dsr.md §1, §3, §5): DENet, side outputs, SPNet.

DENet (monocular depth estimation, §1.2): RGB (B, H, W, 3) -> 3x3 conv + PReLU to `features`
channels (F_de^shallow) -> N residual blocks at full (HR) resolution (F_de^1 .. F_de^N, each
(B, H, W, features); block = x + conv3x3(PReLU(conv3x3(x))), EDSR-style, no normalisation) ->
3x3 conv -> 1-channel depth. N equals DSRNet's number of up-projections so block i pairs with
F_sr^i (§1.2; both are HR, `features`-channel maps).

`WithSideOutputs(net)` runs a network that returns {'depth', 'hr_features'} and adds one 3x3 conv
-> 1-channel depth per feature map ('side': N maps (B, H, W, 1), float32): the side outputs that
feed L_P (§4.2 Recommendation). Its params are {'net': the network's, 'side1' .. 'sideN'}, so
the plain network's params are `params['net']` (what DSRNet-alone evaluation applies).

SPNet (§5): uncertainty fusion + structure CNN.
  e_k = |D_k - D_hr| (B, H, W) for k in (sr, de), given with stop_gradient by the caller.
  U = softmax(conv1x1([e_sr, e_de]), axis=-1): the 1x1 conv maps the two error channels to two
      logits per pixel and the softmax runs over the LAST axis, the axis of the two networks
      (size 2), not over space: U_sr + U_de = 1 at every pixel, a per-pixel split of trust
      between the two networks' features. A spatial softmax would instead be an attention map
      whose values shrink with the image size and would not compare the networks. Initialised
      to kernel -I, bias 0, i.e. U_k = e^{-e_k} / (e^{-e_sr} + e^{-e_de}) (§5.1 Recommendation):
      the network with the lower error at a pixel gets the larger weight.
  fused = concat([F_sr^N * U_sr, F_de^N * U_de]) (B, H, W, 2 * features)
  structure CNN: `depth` x (3x3 conv `width` + ReLU), 3x3 conv -> 1 logit (B, H, W, 1);
      S = sigmoid(logit) is the structure (edge) map.
Gradients of L_S reach both networks through F_sr^N and F_de^N; U carries none to them.

Init: Kaiming normal (fan-in, untruncated, like DSRNet) for the convolutions, zero biases.
"""
from typing import Any, Dict, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.methods.ctkt.dsrnet import PRELU_INIT, conv_init
from jaxseg.nn import Conv2D


def _conv(features, kernel, name, conv_impl, dtype, kernel_init=conv_init):
  return Conv2D(features, kernel, padding=kernel // 2, use_bias=True, kernel_init=kernel_init,
                impl=conv_impl, dtype=dtype, name=name)


class ResidualBlock(nn.Module):
  """x + conv3x3(PReLU(conv3x3(x))) at the input's resolution and width."""
  conv_impl: str = 'xla'
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    y = _conv(c, 3, 'conv1', self.conv_impl, self.dtype)(x)
    y = nn.PReLU(negative_slope_init=PRELU_INIT, name='act')(y)
    return x + _conv(c, 3, 'conv2', self.conv_impl, self.dtype)(y)


class DENet(nn.Module):
  """RGB -> depth with N HR residual blocks; see the module docstring.

  `DENet.apply(variables, image (B, H, W, 3) normalised RGB)` -> {'depth': (B, H, W, 1) float32,
  'hr_features': N maps (B, H, W, features)}."""
  num_blocks: int = 7
  features: int = 64
  conv_impl: str = 'xla'
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, image: jax.Array, train: bool = False) -> Dict[str, Any]:
    del train
    if image.ndim != 4 or image.shape[-1] != 3:
      raise ValueError(f'DENet expects (B, H, W, 3) RGB, got {image.shape}')
    x = _conv(self.features, 3, 'shallow', self.conv_impl, self.dtype)(image)
    x = nn.PReLU(negative_slope_init=PRELU_INIT, name='shallow_act')(x)
    feats = []
    for i in range(1, self.num_blocks + 1):
      x = ResidualBlock(self.conv_impl, self.dtype, name=f'block{i}')(x)
      feats.append(x)
    out = _conv(1, 3, 'output', self.conv_impl, self.dtype)(x).astype(jnp.float32)
    return {'depth': out, 'hr_features': tuple(feats)}


class WithSideOutputs(nn.Module):
  """`net`'s outputs plus 'side': a 3x3 conv -> 1-channel depth per entry of 'hr_features'."""
  net: nn.Module
  conv_impl: str = 'xla'
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, *args, **kwargs):
    out = dict(self.net(*args, **kwargs))
    out['side'] = tuple(
        _conv(1, 3, f'side{i + 1}', self.conv_impl, self.dtype)(f).astype(jnp.float32)
        for i, f in enumerate(out['hr_features']))
    return out


def _minus_identity(key, shape, dtype=jnp.float32):
  del key
  return -jnp.eye(2, dtype=dtype).reshape(shape)


class SPNet(nn.Module):
  """(F_sr^N, F_de^N, e_sr, e_de) -> {'logits': (B, H, W, 1), 'uncertainty': (B, H, W, 2)}."""
  width: int = 32
  depth: int = 3
  conv_impl: str = 'xla'
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, f_sr, f_de, err_sr, err_de):
    errors = jnp.stack([err_sr, err_de], axis=-1).astype(jnp.float32)  # (B, H, W, 2)
    logits = Conv2D(2, 1, padding=0, use_bias=True, kernel_init=_minus_identity,
                    impl=self.conv_impl, name='uncertainty')(errors)
    u = jax.nn.softmax(logits, axis=-1)  # over the two networks, per pixel
    x = jnp.concatenate([f_sr * u[..., :1].astype(f_sr.dtype),
                         f_de * u[..., 1:].astype(f_de.dtype)], axis=-1)
    for i in range(self.depth):
      x = nn.relu(_conv(self.width, 3, f'conv{i + 1}', self.conv_impl, self.dtype)(x))
    out = _conv(1, 3, 'output', self.conv_impl, self.dtype)(x).astype(jnp.float32)
    return {'logits': out, 'uncertainty': u}
