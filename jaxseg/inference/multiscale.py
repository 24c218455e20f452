"""Multi-scale + flip test-time augmentation: one entry point for every segmentation model.

``predict_probs`` averages softmax probabilities over scales (each view resized by a reference
resize rule, jaxseg.nn.resize.RESIZE_RULES) and, with ``flip``, over horizontal flips, in whole or
sliding-window mode, at the label's resolution: semseg's ms protocol (scales 0.5 ... 1.75, flip,
probabilities averaged) and mmseg's TTA (``SegTTAModel`` averages softmax probabilities).
"""
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from jaxseg.inference import sliding
from jaxseg.nn.resize import RESIZE_RULES, resize_bilinear, resize_by_scale

MODES = ('whole', 'slide')
MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)  # semseg / mmseg multi-scale set


def predict_probs(logits_fn: sliding.LogitsFn, image: jax.Array, *, mode: str = 'whole',
                  crop: Optional[Sequence[int]] = None, stride: Optional[Sequence[int]] = None,
                  scales: Sequence[float] = (1.0,), flip: bool = False,
                  out_size: Optional[Sequence[int]] = None, align_corners: bool = False,
                  resize_rule: str = 'size', pad_value: float = 0.0,
                  pad_position: str = 'center', window_batch: Optional[int] = None,
                  num_classes: Optional[int] = None) -> jax.Array:
  """Class probabilities (B, H_out, W_out, C) float32 of an image batch (B, H, W, 3) NHWC.

  Args:
    logits_fn: (N, h, w, 3) -> (N, h', w', C) logits at any output stride (pure; e.g.
      ``lambda x: model.apply(variables, x, train=False)['logits']``).
    image: normalised images (B, H, W, 3).
    mode: 'whole' (each view in one piece) or 'slide' (windows of ``crop``, see
      jaxseg.inference.sliding; all windows of all scales share one shape: one trace).
    crop, stride: window and step (H, W) for 'slide'; stride defaults to ceil(2/3 crop).
    scales: image scales; each view is resized by ``resize_by_scale(image, s, resize_rule)``
      with the rule's own corner convention, and its probabilities are resized to ``out_size``.
    flip: also run the horizontally flipped views and average (flipped back).
    out_size: (H_out, W_out), the label's resolution; default (H, W).
    align_corners: bilinear convention of the logit and probability upsampling (semseg / Caffe
      True, deeplab-pytorch / mmseg False).
    resize_rule: how views are scaled: 'size' (default: cv2-style resize to floor(s * H), as
      semseg and mmseg's TTA), 'pytorch_scale_factor' or 'caffe_interp'.
    pad_value, pad_position: padding of views smaller than the crop (0 = the normalised mean;
      'center' as semseg, or 'bottom_right').
    window_batch: windows per logits_fn call in 'slide' mode (None: all at once).
    num_classes: C, so 'slide' mode needs no extra trace to size its canvas.
  """
  if mode not in MODES:
    raise ValueError(f'mode must be one of {list(MODES)}, got {mode!r}')
  if resize_rule not in RESIZE_RULES:
    raise ValueError(f'resize_rule must be one of {list(RESIZE_RULES)}, got {resize_rule!r}')
  if not scales:
    raise ValueError('scales must not be empty')
  if image.ndim != 4:
    raise ValueError(f'predict_probs expects NHWC images, got shape {image.shape}')
  out_size = tuple(int(s) for s in (out_size or image.shape[1:3]))
  views = [resize_by_scale(image, float(s), resize_rule) for s in scales]
  if mode == 'whole':
    maps = [sliding.whole_probs(logits_fn, v, out_size, flip, align_corners) for v in views]
  else:
    if not crop:
      raise ValueError("mode='slide' needs crop (H, W)")
    maps = sliding.slide_maps(logits_fn, views, crop, stride, flip, align_corners, pad_value,
                              pad_position, window_batch, num_classes)
    maps = [m if m.shape[1:3] == out_size else resize_bilinear(m, out_size, align_corners)
            for m in maps]
  total = maps[0]
  for m in maps[1:]:
    total = total + m
  return total / jnp.float32(len(maps))


def predict_labels(logits_fn: sliding.LogitsFn, image: jax.Array, **kwargs) -> jax.Array:
  """argmax over classes of ``predict_probs``: (B, H_out, W_out) int32."""
  return jnp.argmax(predict_probs(logits_fn, image, **kwargs), axis=-1).astype(jnp.int32)
