"""Confusion matrix, IoU scores and the IoU table on a hand-computed 3-class example."""
import functools
import math

import chex
import jax
import numpy as np
import pytest

from jaxseg.metrics import segmentation as m

# Class 2 is absent from ground truth and (counted) predictions; the ignored pixel predicts 2
# and the out-of-range label 7 predicts 1, neither may count.
LABELS = np.array([[[0, 0, 1], [1, 1, 255], [7, 0, 1]]], np.int32)
PRED = np.array([[[0, 1, 1], [1, 0, 2], [1, 0, 1]]], np.int32)
# Counted (gt, pred): (0,0) (0,1) (1,1) (1,1) (1,0) (0,0) (1,1)
EXPECTED_CM = np.array([[2, 1, 0], [1, 3, 0], [0, 0, 0]], np.int32)


def test_confusion_matrix_hand_computed_and_jit():
  cm = jax.jit(functools.partial(m.confusion_matrix, num_classes=3))(PRED, LABELS)
  assert cm.dtype == np.int32
  np.testing.assert_array_equal(np.asarray(cm), EXPECTED_CM)


def test_confusion_matrix_mask():
  pred = np.concatenate([PRED, np.full_like(PRED, 2)])
  labels = np.concatenate([LABELS, np.full_like(LABELS, 2)])
  cm = m.confusion_matrix(pred, labels, 3, mask=np.array([True, False]))  # padding example
  np.testing.assert_array_equal(np.asarray(cm), EXPECTED_CM)
  pixel_mask = np.ones_like(LABELS, bool)
  pixel_mask[0, 0, 0] = False
  cm = m.confusion_matrix(PRED, LABELS, 3, mask=pixel_mask)
  np.testing.assert_array_equal(np.asarray(cm), EXPECTED_CM - np.diag([1, 0, 0]))


def test_scores_hand_computed():
  s = m.segmentation_scores(EXPECTED_CM)
  # IoU0 = 2 / (3 + 3 - 2) = 1/2, IoU1 = 3 / (4 + 4 - 3) = 3/5, IoU2 absent -> NaN.
  chex.assert_trees_all_close(s['iou'][:2], np.array([0.5, 0.6]))
  assert math.isnan(s['iou'][2])
  chex.assert_trees_all_close(s['miou'], 0.55)
  chex.assert_trees_all_close(s['pixel_accuracy'], 5 / 7)
  chex.assert_trees_all_close(s['class_accuracy'][:2], np.array([2 / 3, 3 / 4]))
  assert math.isnan(s['class_accuracy'][2])
  chex.assert_trees_all_close(s['mean_accuracy'], (2 / 3 + 3 / 4) / 2)


def test_predicted_but_absent_class_has_zero_iou():
  cm = np.array([[1, 1], [0, 0]])  # class 1 predicted once, never in ground truth
  s = m.segmentation_scores(cm)
  chex.assert_trees_all_close(s['iou'], np.array([0.5, 0.0]))
  assert math.isnan(s['class_accuracy'][1])
  assert math.isnan(m.segmentation_scores(np.zeros((2, 2)))['miou'])


def test_format_iou_table():
  # EXPECTED_CM by hand: road IoU 2 / (3 + 3 - 2), acc 2 / 3; sidewalk 3 / (4 + 4 - 3), 3 / 4;
  # building absent (n/a); pixel acc 5 / 7; mean acc (2 / 3 + 3 / 4) / 2.
  text = m.format_iou_table(m.segmentation_scores(EXPECTED_CM), ['road', 'sidewalk', 'building'])
  assert text == ('class       IoU %   Acc %\n'
                  '-------------------------\n'
                  'road        50.00   66.67\n'
                  'sidewalk    60.00   75.00\n'
                  'building      n/a     n/a\n'
                  '-------------------------\n'
                  'mIoU        55.00\n'
                  'pixel acc   71.43\n'
                  'mean acc    70.83\n'), text
  default_names = m.format_iou_table(m.segmentation_scores(EXPECTED_CM)).splitlines()
  assert [l.split()[0] for l in default_names[2:5]] == ['0', '1', '2']
  with pytest.raises(ValueError, match='2 class names for 3 classes'):
    m.format_iou_table(m.segmentation_scores(EXPECTED_CM), ['a', 'b'])
