"""Losses. Pixel-averaged losses return `(sum, count)`; `reduce.global_mean` divides them."""
from jaxseg.losses.reduce import global_mean
from jaxseg.losses.segmentation import (cross_entropy, cross_entropy_sum, msc_cross_entropy,
                                        msc_cross_entropy_terms, resize_labels)

__all__ = ['global_mean', 'cross_entropy', 'cross_entropy_sum', 'msc_cross_entropy',
           'msc_cross_entropy_terms', 'resize_labels']
