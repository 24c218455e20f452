"""Metrics: on-device sufficient statistics, host-side scores."""
from jaxseg.metrics.segmentation import confusion_matrix, format_iou_table, segmentation_scores

__all__ = ['confusion_matrix', 'format_iou_table', 'segmentation_scores']
