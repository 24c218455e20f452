"""The PSPNet network and its builder from `config.model`.

Backbone: deep-stem ResNet (three 3x3 convs, ``stem_width``-``stem_width``-2x``stem_width``),
stride on the 3x3 of each bottleneck ('pytorch' layout), floor-mode max pool, layer3 / layer4
dilated 2 / 4 (every block; ``contract_dilation`` halves the first block's, as mmseg), output
stride 8: a 473 crop gives 60x60 features, 713 gives 90x90 (8k+1 sizes, spec §3).
"""
from typing import Any, Dict, Optional, Sequence

import flax.linen as nn
import jax

from jaxseg.backbones.resnet import ResNet
from jaxseg.heads import FCNHead, PyramidPooling
from jaxseg.nn.precision import compute_dtype

Array = jax.Array
MODEL_NAMES = ('pspnet',)


class PSPNet(nn.Module):
  """(N, H, W, 3) -> {'logits': (N, h, w, K)} (+ 'aux_logits' (N, h, w, K) when training).

  h = (H - 1) / 8 + 1 for H = 8k + 1 (473 -> 60, 713 -> 90, 65 -> 9). ``use_ppm=False`` puts the main head straight on
  layer4 (semseg ``use_ppm=False``). The auxiliary head (``aux``) on layer3 runs only when
  ``train`` (its parameters are created at init); evaluation never sees it. Submodules:
  ``backbone``, ``ppm/branch_{i}/{conv,bn}``, ``cls/{block/{conv,bn},classifier}``, ``aux/...``.
  Dropout (``dropout``, channel-wise) needs the Flax ``'dropout'`` rng in training.
  """
  num_classes: int
  depth: int = 101
  width: int = 64
  stem_width: Optional[int] = None
  contract_dilation: bool = False
  output_stride: int = 8
  use_ppm: bool = True
  bins: Sequence[int] = (1, 2, 3, 6)
  ppm_features: int = 0
  head_features: int = 512
  aux: bool = True
  aux_features: int = 256
  dropout: float = 0.1
  align_corners: bool = True
  bn_mode: str = 'train'
  bn_axis_name: Optional[str] = None
  conv_impl: str = 'xla'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Dict[str, Array]:
    common = dict(bn_mode=self.bn_mode, bn_axis_name=self.bn_axis_name,
                  conv_impl=self.conv_impl, dtype=self.dtype)
    feats = ResNet(depth=self.depth, width=self.width, layout='pytorch', deep_stem=True,
                   stem_width=self.stem_width, output_stride=self.output_stride,
                   contract_dilation=self.contract_dilation, pool_ceil_mode=False,
                   name='backbone', **common)(x, train)
    y = feats['layer4']
    if self.use_ppm:
      y = PyramidPooling(tuple(self.bins), self.ppm_features, self.align_corners, name='ppm',
                         **common)(y, train)
    out = {'logits': FCNHead(self.num_classes, self.head_features, self.dropout, name='cls',
                             **common)(y, train)}
    if self.aux and (train or self.is_initializing()):
      out['aux_logits'] = FCNHead(self.num_classes, self.aux_features, self.dropout, name='aux',
                                  **common)(feats['layer3'], train)
    return out


def build_model(cfg, num_classes: int, axis_name=None) -> PSPNet:
  """PSPNet from `config.model` (fields: configs/pspnet.py); BN synchronised over `axis_name`."""
  return PSPNet(
      num_classes=num_classes, depth=cfg.depth, width=cfg.width,
      stem_width=cfg.get('stem_width', 0) or None,
      contract_dilation=cfg.get('contract_dilation', False), output_stride=cfg.output_stride,
      use_ppm=cfg.use_ppm, bins=tuple(cfg.bins), ppm_features=cfg.get('ppm_features', 0),
      head_features=cfg.head_features, aux=cfg.aux, aux_features=cfg.aux_features,
      dropout=cfg.dropout, align_corners=cfg.align_corners, bn_mode=cfg.bn_mode,
      bn_axis_name=axis_name, conv_impl=cfg.get('conv_impl', 'xla'), dtype=compute_dtype(cfg))
