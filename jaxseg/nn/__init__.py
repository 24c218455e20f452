"""Layers shared by every model: dilated conv, BatchNorm modes, resizing, pooling (NHWC / HWIO)."""
from jaxseg.nn.conv import Conv2D, conv2d, conv_padding, he_normal_fan_out
from jaxseg.nn.norm import BN_MODES, BatchNorm, batch_moments
from jaxseg.nn.pool import adaptive_avg_pool, max_pool, pool_output_size
from jaxseg.nn.resize import resize_bilinear, resize_nearest

__all__ = [
    'BN_MODES',
    'BatchNorm',
    'Conv2D',
    'adaptive_avg_pool',
    'batch_moments',
    'conv2d',
    'conv_padding',
    'he_normal_fan_out',
    'max_pool',
    'pool_output_size',
    'resize_bilinear',
    'resize_nearest',
]
