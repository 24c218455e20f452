"""AdaptSegNet's fully-convolutional discriminator (`FCDiscriminator`) and its weight import.

(N, H, W, K) class probabilities -> (N, h, w, 1) domain logits: five 4x4 convolutions with
stride 2 and padding 1 (K -> ndf -> 2 ndf -> 4 ndf -> 8 ndf -> 1, ndf = 64 in the paper), biased,
leaky ReLU 0.2 after the first four, no normalisation. The output is 1/32 of the input
(1024x512 -> 32x16). `upsample_output=True` (the paper's text; commented out in the released code)
resizes the logits bilinearly (align_corners=True) to the input size.

Initialisation reproduces PyTorch's `nn.Conv2d` default: kernel U(-b, b) with b = 1/sqrt(fan_in)
(kaiming_uniform, a = sqrt(5)), bias U(-b, b), fan_in = 16 * C_in.

State dicts of the reference (`conv1..conv4`, `classifier`, each `weight` OIHW and `bias`)
map to params `conv1..conv4`, `classifier` with `kernel` HWIO (`from_torch_state_dict`).
"""
from typing import Dict, Mapping, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.convert.layouts import conv_kernel
from jaxseg.nn import Conv2D, resize_bilinear

LAYERS = ('conv1', 'conv2', 'conv3', 'conv4', 'classifier')
KERNEL = 4


def channels(num_classes: int, ndf: int = 64) -> Tuple[Tuple[int, int], ...]:
  """(in, out) channels of each layer in `LAYERS` order."""
  widths = (num_classes, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 1)
  return tuple(zip(widths[:-1], widths[1:]))


def torch_uniform(fan_in: int):
  """PyTorch's default Conv2d init for weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / np.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class FCDiscriminator(nn.Module):
  """(N, H, W, K) softmax probabilities -> (N, ceil-ish H/32, W/32, 1) logits (see module doc)."""
  ndf: int = 64
  negative_slope: float = 0.2
  upsample_output: bool = False

  @nn.compact
  def __call__(self, probs: jax.Array) -> jax.Array:
    x = probs
    for i, (name, (cin, cout)) in enumerate(zip(LAYERS, channels(probs.shape[-1], self.ndf))):
      init = torch_uniform(cin * KERNEL * KERNEL)
      x = Conv2D(cout, kernel_size=KERNEL, strides=2, padding=1, use_bias=True,
                 kernel_init=init, bias_init=init, name=name)(x)
      if i < len(LAYERS) - 1:
        x = nn.leaky_relu(x, self.negative_slope)
    if self.upsample_output:
      x = resize_bilinear(x, probs.shape[1:3], align_corners=True)
    return x


def torch_shapes(num_classes: int, ndf: int = 64) -> Dict[str, tuple]:
  """The reference state dict's keys -> shapes (OIHW weights)."""
  out = {}
  for name, (cin, cout) in zip(LAYERS, channels(num_classes, ndf)):
    out[f'{name}.weight'] = (cout, cin, KERNEL, KERNEL)
    out[f'{name}.bias'] = (cout,)
  return out


def check_state_dict(state: Mapping[str, np.ndarray], num_classes: int, ndf: int,
                     name: str) -> None:
  """ValueError naming `name` and every missing, unexpected or wrong-shape key."""
  want = torch_shapes(num_classes, ndf)
  got = {k: tuple(np.shape(v)) for k, v in state.items()}
  missing = sorted(set(want) - set(got))
  unexpected = sorted(set(got) - set(want))
  wrong = [f'{k}: file {got[k]} model {want[k]}' for k in sorted(set(want) & set(got))
           if got[k] != want[k]]
  if missing or unexpected or wrong:
    raise ValueError(
        f'{name} is not an FCDiscriminator for {num_classes} classes with ndf={ndf}:'
        + (f' missing {missing};' if missing else '')
        + (f' unexpected {unexpected};' if unexpected else '')
        + (f' wrong shape {wrong}' if wrong else ''))


def from_torch_state_dict(state: Mapping[str, np.ndarray], num_classes: int, ndf: int = 64,
                          name: str = 'state_dict') -> Dict[str, Dict[str, np.ndarray]]:
  """Reference `FCDiscriminator.state_dict()` -> this module's params (checked first)."""
  check_state_dict(state, num_classes, ndf, name)
  return {layer: {'kernel': conv_kernel(np.asarray(state[f'{layer}.weight'], np.float32),
                                        f'{layer}.weight'),
                  'bias': np.asarray(state[f'{layer}.bias'], np.float32)}
          for layer in LAYERS}


def output_size(size: Sequence[int]) -> Tuple[int, int]:
  """Spatial size of the logits for an input of `size` (h, w) without up-sampling."""
  h, w = size
  for _ in LAYERS:
    h, w = (h + 2 - KERNEL) // 2 + 1, (w + 2 - KERNEL) // 2 + 1
  return h, w
