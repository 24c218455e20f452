"""DeepLab v2 method: the shared segmentation steps with the MSC 4-term loss.

With `config.model.msc` the loss is the sum of one cross-entropy per scale plus the fused
logits (`jaxseg.losses.segmentation.msc_cross_entropy_terms`); without it, plain CE.
"""
from jaxseg.losses import segmentation as seg_losses
from jaxseg.methods.deeplabv2 import checks
from jaxseg.methods.deeplabv2.model import build_model
from jaxseg.methods.segmentation import SegmentationMethod


class DeepLabV2Method(SegmentationMethod):
  """DeepLab v2 (ResNet + ASPP, optional MSC)."""

  check_config = staticmethod(checks.check_config)

  def build_model(self, config, num_classes, axis_name):
    return build_model(config.model, num_classes, axis_name)

  def loss(self, outputs, labels):
    if 'scale_logits' not in outputs:
      return super().loss(outputs, labels)
    fused, *per_scale = seg_losses.msc_cross_entropy_terms(
        outputs, labels, self.ignore_label, self.axis_name,
        at_logit_resolution=self.config.loss.at_logit_resolution,
        align_corners=self.align_corners)
    terms = {f'ce_scale{s:g}': t for s, t in zip(self.config.model.msc_scales, per_scale)}
    terms['ce_fused'] = fused
    return sum(terms.values()), terms
