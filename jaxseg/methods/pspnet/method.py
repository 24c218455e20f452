"""PSPNet method: the shared segmentation steps (CE + 0.4 * auxiliary CE in training).

The loss, eval, predict and the dropout key all come from `SegmentationMethod`: training
applies the model with a per-step 'dropout' key (`state.rng` folded with the step); evaluation
calls it with `train=False`, which returns no `aux_logits` and applies no dropout.
"""
from jaxseg.methods.pspnet import checks
from jaxseg.methods.pspnet.model import build_model
from jaxseg.methods.segmentation import SegmentationMethod


class PSPNetMethod(SegmentationMethod):
  """PSPNet (deep-stem dilated ResNet + PPM + auxiliary head)."""

  check_config = staticmethod(checks.check_config)

  def build_model(self, config, num_classes, axis_name):
    return build_model(config.model, num_classes, axis_name)
