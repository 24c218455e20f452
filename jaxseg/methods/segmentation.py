"""Shared supervised semantic segmentation: the eval / predict half every segmentation method
uses (DeepLab v2, PSPNet, AdaptSegNet's target evaluation) and a cross-entropy train step.

A subclass supplies `build_model(config, num_classes, axis_name)` and, where its loss is not
plain CE (+ auxiliary), `loss(outputs, labels)`. Loss: cross-entropy with ignore, averaged over
valid pixels of the global batch; with `config.loss.at_logit_resolution` (DeepLab v2) labels are
nearest-downsampled to the logits, otherwise logits are upsampled bilinearly to the labels.
Evaluation upsamples logits to the label size and accumulates one confusion matrix over the
whole split.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import viz
from jaxseg.losses import segmentation as seg_losses
from jaxseg.methods.base import Method
from jaxseg.metrics import segmentation as seg_metrics
from jaxseg.nn import resize_bilinear


class SegmentationMethod(Method):
  """Single-network segmentation: model outputs {'logits' (B, h, w, K), ...extras}."""

  batch_keys = ('image', 'label')
  predicts_label_maps = True

  def __init__(self, config, meta, axis_name=None):
    super().__init__(config, meta, axis_name)
    self.num_classes = meta['num_classes']
    self.ignore_label = meta.get('ignore_label', 255)
    self.model = self.build_model(config, self.num_classes, axis_name)
    self.align_corners = config.model.align_corners
    self.tx = None

  def build_model(self, config, num_classes: int, axis_name):
    """The Flax module from `config.model` (subclasses)."""
    raise NotImplementedError

  # -- losses -----------------------------------------------------------------------------
  def _ce(self, logits, labels):
    return seg_losses.cross_entropy_at(
        logits, labels, self.ignore_label, self.axis_name,
        at_logit_resolution=self.config.loss.at_logit_resolution,
        align_corners=self.align_corners)

  def loss(self, outputs, labels):
    """-> (total loss, dict of terms). Each term is a global mean over valid pixels."""
    terms = {'ce': self._ce(outputs['logits'], labels)}
    total = terms['ce']
    if 'aux_logits' in outputs and self.config.loss.get('aux_weight', 0.0):
      terms['ce_aux'] = self._ce(outputs['aux_logits'], labels)
      total = total + self.config.loss.aux_weight * terms['ce_aux']
    return total, terms

  # -- steps ------------------------------------------------------------------------------
  def train_step(self, state, batch):
    def loss_fn(params):
      outputs, batch_stats = self.apply_train(params, state.batch_stats, batch['image'])
      total, terms = self.loss(outputs, batch['label'])
      return total, (terms, batch_stats)
    return self.optimizer_step(state, loss_fn)

  def eval_variables(self, state) -> dict:
    """The Flax variables of `self.model` in `state` (multi-network methods pick their tree)."""
    return {'params': state.params, 'batch_stats': state.batch_stats}

  def _logits_at_labels(self, state, image, size):
    outputs = self.model.apply(self.eval_variables(state), image, train=False)
    return resize_bilinear(outputs['logits'].astype(jnp.float32), size, self.align_corners)

  def eval_step(self, state, batch):
    logits = self._logits_at_labels(state, batch['image'], batch['label'].shape[1:3])
    pred = jnp.argmax(logits, axis=-1)
    mask = jnp.broadcast_to(batch['mask'][:, None, None], pred.shape)
    cm = seg_metrics.confusion_matrix(pred, batch['label'], self.num_classes,
                                      self.ignore_label, mask=mask)
    if self.axis_name is not None:
      cm = jax.lax.psum(cm, self.axis_name)
    return {'confusion': cm}

  def summarize(self, sums):
    scores = seg_metrics.segmentation_scores(np.asarray(sums['confusion']))
    scalars = {'miou': scores['miou'], 'pixel_accuracy': scores['pixel_accuracy'],
               'mean_accuracy': scores['mean_accuracy']}
    for name, iou in zip(self.meta['class_names'], scores['iou']):
      scalars[f'iou/{name}'] = iou
    return scalars, seg_metrics.format_iou_table(scores, self.meta['class_names'])

  def predict_step(self, state, batch):
    logits = self._logits_at_labels(state, batch['image'], batch['image'].shape[1:3])
    return {'label': jnp.argmax(logits, axis=-1)}

  def render(self, example, prediction, raw_image):
    palette = np.asarray(self.meta['palette'], np.uint8)
    panels = [raw_image, viz.colorize_labels(example['label'], palette, self.ignore_label),
              viz.colorize_labels(prediction['label'], palette, self.ignore_label)]
    return viz.side_by_side(panels, titles=['image', 'ground truth', 'prediction'])
