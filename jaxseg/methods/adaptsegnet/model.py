"""`config.model` / `config.discriminator` -> AdaptSegNet's generator and discriminators.

Generator: DeepLab v2 (`jaxseg.models.deeplabv2.DeepLabV2`, caffe-layout dilated ResNet, output
stride 8, no MSC). `model.multi_level=True` is the released `DeeplabMulti`: an ASPP classifier on
conv4 (layer3) -> `aux_logits` (pred1, level 1) and one on conv5 (layer4) -> `logits` (pred2,
level 2, the prediction evaluated). `model.aspp_branches=2` sums only the rate-6 and rate-12
convs (the release's `return` inside the loop; rates 18 and 24 keep parameters that never act),
0 = all four (the paper). `model.bn_mode='frozen_affine'` is the release's BatchNorm: batch
statistics in training (running statistics updated on the source and then the target pass),
scale/shift frozen.

Discriminators: one `FCDiscriminator` per adapted level, `level1` (on pred1) and `level2` (on
pred2), in `LEVELS` order.
"""
from jaxseg.methods.adaptsegnet.discriminator import FCDiscriminator
from jaxseg.models import deeplabv2
from jaxseg.nn.precision import compute_dtype

MODEL_NAMES = ('deeplabv2',)
LEVELS = ('level1', 'level2')
#: Model output that each level reads (level1 = conv4 classifier, level2 = conv5 classifier).
LEVEL_OUTPUTS = {'level1': 'aux_logits', 'level2': 'logits'}


def build_generator(cfg, num_classes: int, axis_name=None) -> deeplabv2.DeepLabV2:
  return deeplabv2.DeepLabV2(
      num_classes=num_classes, depth=cfg.depth, width=cfg.width, layout=cfg.layout,
      output_stride=cfg.output_stride, bn_mode=cfg.bn_mode, aspp_rates=tuple(cfg.aspp_rates),
      aspp_branches=cfg.get('aspp_branches', 0) or None, multi_level=cfg.multi_level,
      conv_impl=cfg.get('conv_impl', 'xla'), dtype=compute_dtype(cfg), bn_axis_name=axis_name)


def build_discriminator(cfg) -> FCDiscriminator:
  return FCDiscriminator(ndf=cfg.ndf, negative_slope=cfg.negative_slope,
                         upsample_output=cfg.upsample_output)


def levels(config) -> tuple:
  """The levels with a discriminator: those whose adversarial weight is > 0 (level1 needs the
  multi-level generator). Empty for source-only training."""
  weights = dict(zip(LEVELS, config.loss.adv_weights))
  out = tuple(l for l in LEVELS if weights[l] > 0)
  if not config.model.multi_level:
    out = tuple(l for l in out if l != 'level1')
  return out
