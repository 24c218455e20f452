"""Segmentation heads."""
from jaxseg.heads.aspp import ASPP

__all__ = ['ASPP']
