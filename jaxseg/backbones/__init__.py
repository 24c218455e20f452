"""Backbones."""
from jaxseg.backbones.resnet import ResNet

__all__ = ['ResNet']
