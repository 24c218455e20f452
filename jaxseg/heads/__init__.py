"""Segmentation heads."""
from jaxseg.heads.aspp import ASPP
from jaxseg.heads.fcn import ConvBNReLU, FCNHead
from jaxseg.heads.ppm import PyramidPooling

__all__ = ['ASPP', 'ConvBNReLU', 'FCNHead', 'PyramidPooling']
