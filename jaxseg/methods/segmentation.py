"""Shared supervised semantic segmentation: the eval / predict half every segmentation method
uses (DeepLab v2, PSPNet, AdaptSegNet's target evaluation) and a cross-entropy train step.

A subclass supplies `build_model(config, num_classes, axis_name)` and, where its loss is not
plain CE (+ auxiliary), `loss(outputs, labels)`. Loss: cross-entropy with ignore, averaged over
valid pixels of the global batch; with `config.loss.at_logit_resolution` (DeepLab v2) labels are
nearest-downsampled to the logits, otherwise logits are upsampled bilinearly to the labels.
Evaluation and prediction go through `jaxseg.inference` with `config.eval.inference` (whole
image or sliding windows, any scales, horizontal flip; absent = whole image, one scale):
probabilities at the label's resolution, one confusion matrix over the whole split for the
single-scale view (`miou`, ...) and, when the configured inference is multi-scale and/or
flipped, a second one for it (`tta/miou`, ...), and with `config.eval.crf` a third after the
dense CRF (`crf/miou`, ...): all appear in the report and metrics.jsonl.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import viz
from jaxseg.inference import config as inference_config
from jaxseg.inference.crf import dense_crf_batch
from jaxseg.inference.multiscale import predict_probs
from jaxseg.losses import segmentation as seg_losses
from jaxseg.methods.base import Method
from jaxseg.metrics import segmentation as seg_metrics
from jaxseg.training.state import step_rng

TTA = 'tta'  # metric prefix of the configured multi-scale / flip inference
CRF = 'crf'  # metric prefix of the configured inference followed by the dense CRF


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
    self.inference = inference_config.from_config(config)
    self.crf_params = inference_config.crf_params(config)  # None: no CRF
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
    rng = step_rng(state)  # the dropout key of this step (PSPNet); unused by DeepLab v2

    def loss_fn(params):
      outputs, batch_stats = self.apply_train(params, state.batch_stats, batch['image'], rng)
      total, terms = self.loss(outputs, batch['label'])
      return total, (terms, batch_stats)
    return self.optimizer_step(state, loss_fn)

  def eval_variables(self, state) -> dict:
    """The Flax variables of `self.model` in `state` (multi-network methods pick their tree)."""
    return {'params': state.params, 'batch_stats': state.batch_stats}

  def probs(self, state, image, size, inference=None):
    """(B, h, w, 3) normalised images -> (B, *size, K) float32 class probabilities by
    `inference` (an `InferenceConfig`; default: the configured `config.eval.inference`)."""
    variables = self.eval_variables(state)

    def logits_fn(x):
      return self.model.apply(variables, x, train=False)['logits'].astype(jnp.float32)
    inf = self.inference if inference is None else inference
    return predict_probs(logits_fn, image, **inf.kwargs(), out_size=tuple(size),
                         align_corners=self.align_corners, num_classes=self.num_classes)

  def raw_image(self, image):
    """Normalised (B, H, W, 3) images -> the uint8 RGB images they came from (the CRF's
    bilateral guide): the recipe's normalisation undone (`config.dataset.augment` mean, std,
    BGR order), rounded."""
    aug = self.config.dataset.augment
    x = image.astype(jnp.float32) * jnp.asarray(aug.std, jnp.float32) + jnp.asarray(
        aug.mean, jnp.float32)
    if aug.get('bgr', False):
      x = x[..., ::-1]
    return jnp.clip(jnp.round(x), 0, 255).astype(jnp.uint8)

  def crf_probs(self, state, image, size):
    """The configured inference's probabilities at the image's size, refined by the dense CRF
    with the image as guide, then resized to `size` -> (B, *size, K)."""
    probs = self.probs(state, image, image.shape[1:3])
    refined = dense_crf_batch(self.raw_image(image), probs, **self.crf_params)
    if tuple(size) != tuple(image.shape[1:3]):
      refined = jax.image.resize(refined, (refined.shape[0], *size, refined.shape[-1]),
                                 'bilinear', antialias=False)
    return refined

  def _confusion(self, pred, batch):
    mask = jnp.broadcast_to(batch['mask'][:, None, None], pred.shape)
    cm = seg_metrics.confusion_matrix(pred, batch['label'], self.num_classes,
                                      self.ignore_label, mask=mask)
    return jax.lax.psum(cm, self.axis_name) if self.axis_name is not None else cm

  def eval_step(self, state, batch):
    """-> {'confusion' (K, K) single scale[, 'confusion_tta' (K, K) the configured TTA]}."""
    size = batch['label'].shape[1:3]
    single = self.inference.single_scale()
    sums = {'confusion': self._confusion(
        jnp.argmax(self.probs(state, batch['image'], size, single), -1), batch)}
    if self.inference != single:
      sums[f'confusion_{TTA}'] = self._confusion(
          jnp.argmax(self.probs(state, batch['image'], size), -1), batch)
    if self.crf_params is not None:
      sums[f'confusion_{CRF}'] = self._confusion(
          jnp.argmax(self.crf_probs(state, batch['image'], size), -1), batch)
    return sums

  def _scores(self, confusion, prefix: str = ''):
    scores = seg_metrics.segmentation_scores(np.asarray(confusion))
    scalars = {f'{prefix}{k}': scores[k] for k in ('miou', 'pixel_accuracy', 'mean_accuracy')}
    for name, iou in zip(self.meta['class_names'], scores['iou']):
      scalars[f'{prefix}iou/{name}'] = iou
    return scores, scalars

  def summarize(self, sums):
    names = self.meta['class_names']
    scores, scalars = self._scores(sums['confusion'])
    views = [(self.inference.single_scale().name, scores)]
    for key, tag, title in self.extra_views():
      if key in sums:
        extra, more = self._scores(sums[key], f'{tag}/')
        scalars.update(more)
        views.append((title, extra))
    if len(views) == 1:
      return scalars, seg_metrics.format_iou_table(scores, names)
    text = '\n\n'.join(f'[{title}]\n' + seg_metrics.format_iou_table(sc, names)
                         for title, sc in views)
    summary = ', '.join(f'{title}: mIoU {100 * sc["miou"]:.2f}' for title, sc in views)
    return scalars, f'{summary}\n\n{text}'

  def extra_views(self):
    """(sums key, metric prefix, report title) of the evaluations beside single scale."""
    return [(f'confusion_{TTA}', TTA, self.inference.name),
            (f'confusion_{CRF}', CRF, f'{self.inference.name} + CRF')]

  def predict_step(self, state, batch):
    size = batch['image'].shape[1:3]
    probs = (self.probs(state, batch['image'], size) if self.crf_params is None
             else self.crf_probs(state, batch['image'], size))
    return {'label': jnp.argmax(probs, axis=-1)}

  def render(self, example, prediction, raw_image):
    palette = np.asarray(self.meta['palette'], np.uint8)
    panels = [raw_image, viz.colorize_labels(example['label'], palette, self.ignore_label),
              viz.colorize_labels(prediction['label'], palette, self.ignore_label)]
    return viz.side_by_side(panels, titles=['image', 'ground truth', 'prediction'])
