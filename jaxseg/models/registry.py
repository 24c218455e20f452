"""Model registry: `config.model.name` -> a Flax module built from `config.model`."""
import jax.numpy as jnp

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(model_cfg):
  name = model_cfg.get('dtype', 'float32')
  if name not in DTYPES:
    raise ValueError(f'config.model.dtype={name!r} must be one of {sorted(DTYPES)}')
  return DTYPES[name]


def _deeplabv2(cfg, num_classes, axis_name):
  from jaxseg.models import deeplabv2  # pylint: disable=g-import-not-at-top
  base = deeplabv2.DeepLabV2(
      num_classes=num_classes, depth=cfg.depth, width=cfg.width, layout=cfg.layout,
      output_stride=cfg.output_stride, bn_mode=cfg.bn_mode, aspp_rates=tuple(cfg.aspp_rates),
      aspp_branches=cfg.get('aspp_branches', 0) or None, multi_level=cfg.get('multi_level', False),
      conv_impl=cfg.get('conv_impl', 'xla'), dtype=compute_dtype(cfg), bn_axis_name=axis_name)
  if cfg.get('msc', False):
    return deeplabv2.MultiScaleInput(base=base, scales=tuple(cfg.msc_scales),
                                     align_corners=cfg.align_corners)
  return base


SEGMENTATION_MODELS = {'deeplabv2': _deeplabv2}


def build_segmentation_model(model_cfg, num_classes: int, axis_name=None):
  if model_cfg.name not in SEGMENTATION_MODELS:
    raise ValueError(f'config.model.name={model_cfg.name!r} is not a known segmentation model; '
                     f'known: {sorted(SEGMENTATION_MODELS)}')
  return SEGMENTATION_MODELS[model_cfg.name](model_cfg, num_classes, axis_name)
