"""`config.model` -> the DeepLab v2 Flax module (`jaxseg.models.deeplabv2`), MSC-wrapped or not."""
from jaxseg.models import deeplabv2
from jaxseg.nn.precision import compute_dtype

MODEL_NAMES = ('deeplabv2',)


def build_model(cfg, num_classes: int, axis_name=None):
  """DeepLabV2 (or MultiScaleInput over it when `cfg.msc`) from `config.model`.

  Outputs: `logits` (B, H/os, W/os, K), `scale_logits` with MSC, `aux_logits` (conv4
  classifier) with `multi_level`.
  """
  base = deeplabv2.DeepLabV2(
      num_classes=num_classes, depth=cfg.depth, width=cfg.width, layout=cfg.layout,
      output_stride=cfg.output_stride, bn_mode=cfg.bn_mode, aspp_rates=tuple(cfg.aspp_rates),
      aspp_branches=cfg.get('aspp_branches', 0) or None, multi_level=cfg.get('multi_level', False),
      conv_impl=cfg.get('conv_impl', 'xla'), dtype=compute_dtype(cfg), bn_axis_name=axis_name)
  if cfg.get('msc', False):
    rule = cfg.get('msc_resize_rule', 'pytorch_scale_factor')
    return deeplabv2.MultiScaleInput(
        base=base, scales=tuple(cfg.msc_scales), resize_rule=rule,
        # Caffe Interp always aligns corners: its rule decides (None = the rule's reference).
        align_corners=None if rule == 'caffe_interp' else cfg.align_corners)
  return base
