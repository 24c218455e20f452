"""DeepLab v2's parameter groups (Caffe lr_mult / decay_mult), for `config.optimizer.param_groups`."""


def deeplab_param_groups(freeze_bn: bool, head_lr_mult: float = 10.0,
                         head_bias_lr_mult: float = 20.0) -> dict:
  """Caffe lr_mult/decay_mult: backbone 1x, ASPP weights 10x, ASPP biases 20x without decay;
  BatchNorm without decay, frozen with `freeze_bn`.

  Ordered name -> group (first match wins; the rest is 'default', 1x), so one field can be
  overridden: --config.optimizer.param_groups.head_weight.lr_mult=1. Patterns match '/'-joined
  parameter paths ('aspp' also covers 'aspp_aux' and an MSC 'base/' prefix).
  """
  return {
      'batchnorm': dict(pattern=r'(^|/)(bn\d*|downsample_bn)/', frozen=freeze_bn, lr_mult=1.0,
                        weight_decay=0.0),
      'head_bias': dict(pattern=r'(^|/)aspp[^/]*/.*bias$', lr_mult=head_bias_lr_mult,
                        weight_decay=0.0, frozen=False),
      'head_weight': dict(pattern=r'(^|/)aspp[^/]*/', lr_mult=head_lr_mult, frozen=False),
  }
