"""DSRNet: a depth-only D-DBPN (deep back-projection network), CTKT's depth SR branch.

Facts from ctkt_dsr.md §1.1 and §2 (DBPN: Haris et al.; x16 from the same group's PMBANet):
  feat0      3x3 conv -> `feat0` channels (DBPN 256), PReLU
  feat1      1x1 conv -> `features` channels (DBPN 64), PReLU
  T up-projection units and T - 1 down-projection units (D-DBPN T = 7, DBPN-LL 10), alternating
  up1, down1, up2, ..., down{T-1}, up{T}:
    up-projection    h0 = deconv(x); l0 = conv(h0); h1 = deconv(l0 - x); out = h0 + h1
    down-projection  l0 = conv(x);   h0 = deconv(l0); l1 = conv(h0 - x); out = l0 + l1
  every conv / deconv followed by its own PReLU (one slope, PyTorch's init 0.25; Flax's default
  0.01 differs, DBPN#60). Dense (D-DBPN, `dense=True`): unit i > 1 of each kind first applies a
  1x1 conv + PReLU to the concatenation of all earlier outputs of the other kind (the HR maps
  for a down unit, the LR maps for an up unit); plain (`dense=False`): each unit takes only the
  previous unit's output.
  output     3x3 conv on the concatenation of all T HR maps (T * features channels) -> 1 channel
  residual   optional (DBPN `--residual`): the bicubic up-sampling of the input is added.
  deconv / conv of the projections: (kernel, stride, padding) by scale, `PROJECTION`.

Layouts: NHWC activations, HWIO kernels. `DSRNet.apply(variables, depth_lr (B, h, w, 1),
depth_lr_up=None (B, h*s, w*s, 1), train=False)` -> {'depth': (B, h*s, w*s, 1) float32,
'hr_features': T maps (B, h*s, w*s, features) (F_sr^1 .. F_sr^T, ctkt_dsr.md §2
Recommendation [D]: the outputs of the up-projections)}. `train` is unused (no BatchNorm or
dropout); it is there for the common model signature.

Transposed convolutions: PyTorch `ConvTranspose2d(k, s, p)` (output (in - 1) s + k - 2p, which is
exactly s * in for every entry of the table) is `jaxseg.nn.deconv.ConvTranspose` (the house's one
transposed convolution; for these strides one packed-kernel convolution + pixel shuffle).

Initialisation follows DBPN (ctkt_dsr.md §2: Kaiming normal, PReLU everywhere) in PyTorch's
conventions: untruncated normal, std sqrt(2 / fan_in) for convolutions (fan_in = kh kw C_in);
for the transposed convolutions PyTorch's `kaiming_normal_` reads fan_in from the weight's
second axis, i.e. kh kw C_out (HWIO fan-out). Biases zero.
"""
from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxseg.nn import Conv2D
from jaxseg.nn.deconv import ConvTranspose

#: scale -> (kernel, stride, padding) of the projection deconv / conv (ctkt_dsr.md §2 table;
#: x2, x4, x8 from DBPN, x16 from PMBANet).
PROJECTION = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2), 16: (20, 16, 2)}
PRELU_INIT = 0.25  # PyTorch nn.PReLU() default

conv_init = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')  # untruncated
deconv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')  # untruncated


# ---------------------------------------------------------------------------------------------
# Projection units.

class _Layers(nn.Module):
  """Shared builders: conv / deconv + PReLU with the unit's geometry."""
  features: int
  scale: int
  conv_impl: str = 'xla'
  dtype: Optional[Any] = None

  def _geometry(self):
    if self.scale not in PROJECTION:
      raise ValueError(f'scale must be one of {sorted(PROJECTION)}, got {self.scale}')
    return PROJECTION[self.scale]

  def act(self, y, name):
    return nn.PReLU(negative_slope_init=PRELU_INIT, name=name)(y)

  def conv(self, x, name):  # HR -> LR
    k, s, p = self._geometry()
    y = Conv2D(self.features, k, strides=s, padding=p, use_bias=True, kernel_init=conv_init,
               impl=self.conv_impl, dtype=self.dtype, name=name)(x)
    return self.act(y, name + '_act')

  def deconv(self, x, name):  # LR -> HR
    k, s, p = self._geometry()
    y = ConvTranspose(self.features, k, s, p, use_bias=True, kernel_init=deconv_init,
                      impl=self.conv_impl, dtype=self.dtype, name=name)(x)
    return self.act(y, name + '_act')

  def bottleneck(self, x):
    """1x1 conv + PReLU over a concatenation (dense units); identity for one map."""
    if x.shape[-1] == self.features:
      return x
    y = Conv2D(self.features, 1, padding=0, use_bias=True, kernel_init=conv_init,
               impl=self.conv_impl, dtype=self.dtype, name='bottleneck')(x)
    return self.act(y, 'bottleneck_act')


class UpProjection(_Layers):
  """(B, h, w, C_in) LR -> (B, h s, w s, features) HR; C_in != features adds the 1x1 bottleneck."""

  @nn.compact
  def __call__(self, x):
    x = self.bottleneck(x)
    h0 = self.deconv(x, 'deconv1')
    l0 = self.conv(h0, 'conv')
    h1 = self.deconv(l0 - x, 'deconv2')
    return h0 + h1


class DownProjection(_Layers):
  """(B, H, W, C_in) HR -> (B, H / s, W / s, features) LR; 1x1 bottleneck when C_in != features."""

  @nn.compact
  def __call__(self, x):
    x = self.bottleneck(x)
    l0 = self.conv(x, 'conv1')
    h0 = self.deconv(l0, 'deconv')
    l1 = self.conv(h0 - x, 'conv2')
    return l0 + l1


def bicubic_upsample(x: jax.Array, scale: int) -> jax.Array:
  """(B, h, w, C) -> (B, h s, w s, C) bicubic (Keys a = -0.5, half-pixel centres; PIL's kernel
  when up-sampling, edge weights renormalised). Used when no pipeline `depth_lr_up` is given."""
  b, h, w, c = x.shape
  return jax.image.resize(x.astype(jnp.float32), (b, h * scale, w * scale, c), 'cubic')


class DSRNet(nn.Module):
  """Depth-only D-DBPN; see the module docstring. Submodules: `feat0`, `feat1`, `up1` ..
  `up{T}`, `down1` .. `down{T-1}`, `output` (and `*_act` PReLUs)."""
  scale: int = 4
  num_stages: int = 7       # T (D-DBPN 7)
  features: int = 64        # HR / LR feature maps (DBPN base_filter 64)
  feat0: int = 256          # first conv's width (DBPN feat 256)
  dense: bool = True        # D-DBPN concatenation + 1x1 bottlenecks (False: plain chain)
  residual: bool = False    # add the bicubic up-sampled input (DBPN --residual)
  conv_impl: str = 'xla'
  dtype: Optional[Any] = None

  @nn.compact
  def __call__(self, depth_lr: jax.Array, depth_lr_up: Optional[jax.Array] = None,
               train: bool = False) -> Dict[str, Any]:
    del train
    if depth_lr.ndim != 4 or depth_lr.shape[-1] != 1:
      raise ValueError(f'DSRNet expects (B, h, w, 1) depth, got {depth_lr.shape}')
    if self.num_stages < 1:
      raise ValueError(f'num_stages must be >= 1, got {self.num_stages}')
    kw = dict(features=self.features, scale=self.scale, conv_impl=self.conv_impl,
              dtype=self.dtype)
    act = lambda y, name: nn.PReLU(negative_slope_init=PRELU_INIT, name=name)(y)
    x = Conv2D(self.feat0, 3, use_bias=True, kernel_init=conv_init, impl=self.conv_impl,
               dtype=self.dtype, name='feat0')(depth_lr)
    x = act(x, 'feat0_act')
    x = Conv2D(self.features, 1, padding=0, use_bias=True, kernel_init=conv_init,
               impl=self.conv_impl, dtype=self.dtype, name='feat1')(x)
    x = act(x, 'feat1_act')

    def join(maps: Sequence[jax.Array]) -> jax.Array:  # newest first
      return jnp.concatenate(maps[::-1], axis=-1) if self.dense else maps[-1]

    hr = [UpProjection(name='up1', **kw)(x)]
    lr = []
    for i in range(2, self.num_stages + 1):
      lr.append(DownProjection(name=f'down{i - 1}', **kw)(join(hr)))
      hr.append(UpProjection(name=f'up{i}', **kw)(join(lr)))
    out = Conv2D(1, 3, use_bias=True, kernel_init=conv_init, impl=self.conv_impl,
                 dtype=self.dtype, name='output')(jnp.concatenate(hr[::-1], axis=-1))
    out = out.astype(jnp.float32)
    if self.residual:
      up = (bicubic_upsample(depth_lr, self.scale) if depth_lr_up is None
            else depth_lr_up.reshape(out.shape).astype(jnp.float32))
      out = out + up
    return {'depth': out, 'hr_features': tuple(hr)}


def build_dsrnet(model_cfg, scale: int, dtype=None) -> DSRNet:
  """`config.model` (name 'dbpn') -> DSRNet at `scale` (config.dataset.augment.dsr_scale)."""
  m = model_cfg
  return DSRNet(scale=int(scale), num_stages=int(m.num_stages), features=int(m.features),
                feat0=int(m.feat0), dense=bool(m.dense), residual=bool(m.residual),
                conv_impl=m.get('conv_impl', 'xla'), dtype=dtype)
