"""PAD-Net tenant: multi-task depth + scene parsing with multi-modal distillation (issue 3).

Model `jaxseg.methods.padnet.model.PADNet` built from `config.model`; loss `padnet_loss` (L1..L6) with
`config.loss` weights and kinds, a global mean over the valid pixels of the global batch.
Evaluation (all NHWC / NHW, sums over the whole split, `batch['mask']` honoured):
  parsing   confusion matrix of the final logits upsampled (bilinear) to the label size;
  depth     `depth_metric_sums` of the final depth (config.evaluation: range, Eigen crop);
  normals   `normals_metric_sums` of the intermediate normals (upsampled), multi-task only;
  contours  `contour_metric_sums` of the intermediate contour logits (upsampled), multi-task only.
Single-task variants ('depth', 'parsing') evaluate only their task.
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import viz
from jaxseg.methods.base import Method
from jaxseg.metrics import contours as contour_metrics
from jaxseg.metrics import depth as depth_metrics
from jaxseg.metrics import normals as normal_metrics
from jaxseg.metrics import segmentation as seg_metrics
from jaxseg.methods.padnet import checks
from jaxseg.methods.padnet.loss import padnet_loss
from jaxseg.methods.padnet.model import build_model, evaluated_tasks, fast_init
from jaxseg.nn import resize_bilinear

DEPTH_KEYS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'd1', 'd2', 'd3')


class PadNetMethod(Method):
  """PAD-Net and its ablations (single-task, direct multi-task, modules A / B / C)."""

  check_config = staticmethod(checks.check_config)

  batch_keys = ('image', 'label', 'depth', 'normals', 'contours', 'valid')

  def __init__(self, config, meta, axis_name=None):
    super().__init__(config, meta, axis_name)
    self.num_classes = meta['num_classes']
    self.ignore_label = meta.get('ignore_label', 255)
    self.model = build_model(config.model, self.num_classes, axis_name)
    self.align_corners = config.model.align_corners
    self.tasks = evaluated_tasks(config.model.tasks)
    self.tx = None

  # -- state ------------------------------------------------------------------------------
  def init_variables(self, rng, image):
    if self.config.model.get('param_init', 'fast') == 'fast':
      return fast_init(self.model, rng, image)
    return self.model.init(rng, image, train=False)

  def _apply(self, state, image):
    return self.model.apply({'params': state.params, 'batch_stats': state.batch_stats},
                            image, train=False)

  # -- loss -------------------------------------------------------------------------------
  def loss(self, outputs, batch):
    """-> (total, {term: unweighted global mean}); terms whose output is absent are skipped."""
    lc = self.config.loss
    pos_weight = float(lc.contour_pos_weight) or None  # 0 = class balance from the batch (HED)
    return padnet_loss(outputs, batch, dict(lc.weights), self.axis_name,
                       depth_kind=lc.depth_kind, normals_kind=lc.normals_kind,
                       contour_pos_weight=pos_weight, resize=lc.resize,
                       align_corners=self.align_corners, ignore_label=self.ignore_label)

  # -- steps ------------------------------------------------------------------------------
  def train_step(self, state, batch):
    def loss_fn(params):
      outputs, batch_stats = self.apply_train(params, state.batch_stats, batch['image'])
      total, terms = self.loss(outputs, batch)
      return total, ({f'loss_{k}': v for k, v in terms.items()}, batch_stats)
    return self.optimizer_step(state, loss_fn)

  def eval_step(self, state, batch):
    """-> {'confusion' (K, K), 'depth', 'normals', 'contours'} sums for the evaluated tasks.

    Each task is masked by its own validity (and the padding mask): depth by `batch['valid']`,
    parsing by the ignore label, normals by their zero vectors (undefined), contours nowhere.
    """
    out = self._apply(state, batch['image'])
    ev = self.config.evaluation
    mask, valid = batch['mask'], batch.get('valid')
    sums = {}
    if 'parsing' in self.tasks:
      size = batch['label'].shape[1:3]
      logits = resize_bilinear(out['logits'].astype(jnp.float32), size, self.align_corners)
      sums['confusion'] = seg_metrics.confusion_matrix(
          jnp.argmax(logits, axis=-1), batch['label'], self.num_classes, self.ignore_label,
          mask=mask)
    if 'depth' in self.tasks:
      sums['depth'] = depth_metrics.depth_metric_sums(
          out['depth'].astype(jnp.float32), batch['depth'], valid, mask,
          min_depth=ev.min_depth, max_depth=ev.max_depth or None, gt_range=ev.gt_range,
          eigen_crop=ev.eigen_crop, resize=ev.depth_resize, align_corners=self.align_corners)
    if 'normals' in self.tasks:
      sums['normals'] = normal_metrics.normals_metric_sums(
          out['intermediate']['normals'].astype(jnp.float32), batch['normals'], None, mask,
          align_corners=self.align_corners)
    if 'contours' in self.tasks:
      sums['contours'] = contour_metrics.contour_metric_sums(
          out['intermediate']['contours'].astype(jnp.float32), batch['contours'], None, mask,
          num_thresholds=ev.contour_thresholds, tolerance=ev.contour_tolerance,
          align_corners=self.align_corners)
    if self.axis_name is not None:
      sums = jax.lax.psum(sums, self.axis_name)
    return sums

  def summarize(self, sums):
    """Summed eval pytree -> (scalars, report). Depth/normals/contours keys are prefixed."""
    scalars, parts = {}, []
    if 'confusion' in sums:
      scores = seg_metrics.segmentation_scores(np.asarray(sums['confusion']))
      scalars.update(miou=scores['miou'], pixel_accuracy=scores['pixel_accuracy'],
                     mean_accuracy=scores['mean_accuracy'])
      for name, iou in zip(self.meta['class_names'], scores['iou']):
        scalars[f'iou/{name}'] = iou
      parts.append(seg_metrics.format_iou_table(scores, self.meta['class_names']))
    if 'depth' in sums:
      pixel = depth_metrics.summarize_depth(sums['depth'])
      image = depth_metrics.summarize_depth(sums['depth'], per_image=True)
      scalars.update({f'depth/{k}': pixel[k] for k in DEPTH_KEYS + ('mae',)})
      parts.append(format_depth_table(pixel, image))
    if 'normals' in sums:
      normals = normal_metrics.summarize_normals(sums['normals'])
      scalars.update({f'normals/{k}': v for k, v in normals.items() if k != 'count'})
      parts.append(format_table('normals (intermediate), degrees / % within',
                                {k: v for k, v in normals.items() if k != 'count'}))
    if 'contours' in sums:
      contours = contour_metrics.summarize_contours(sums['contours'])
      scalars.update({f'contours/{k}': v for k, v in contours.items()})
      parts.append(format_table('contours (intermediate)', contours))
    return scalars, '\n'.join(parts)

  def predict_step(self, state, batch):
    """-> 'label' (B, H, W), 'depth' (B, H, W), 'normals' (B, H, W, 3) unit, 'contours'
    (B, H, W) probabilities, at input resolution; only the variant's tasks."""
    out = self._apply(state, batch['image'])
    size = batch['image'].shape[1:3]
    up = lambda x: resize_bilinear(x.astype(jnp.float32), size, self.align_corners)
    pred = {}
    if 'parsing' in self.tasks:
      pred['label'] = jnp.argmax(up(out['logits']), axis=-1)
    if 'depth' in self.tasks:
      pred['depth'] = up(out['depth'][..., None])[..., 0]
    if 'normals' in self.tasks:
      n = up(out['intermediate']['normals'])
      pred['normals'] = n / jnp.maximum(jnp.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    if 'contours' in self.tasks:
      pred['contours'] = jax.nn.sigmoid(up(out['intermediate']['contours'][..., None]))[..., 0]
    return pred

  def render(self, example, prediction, raw_image):
    """Input, then ground truth / prediction pairs for depth, parsing, normals, contours."""
    panels, titles = [np.asarray(raw_image)], ['image']
    if 'depth' in prediction:
      gt = np.asarray(example['depth'], np.float64)
      ok = np.isfinite(gt) & (gt > 0)
      lo, hi = (float(gt[ok].min()), float(gt[ok].max())) if ok.any() else (None, None)
      pred = np.maximum(np.asarray(prediction['depth'], np.float64), 1e-3)
      panels += [viz.colorize_depth(gt, lo, hi), viz.colorize_depth(pred, lo, hi)]
      titles += ['depth gt', 'depth']
    if 'label' in prediction:
      palette = np.asarray(self.meta['palette'], np.uint8)
      panels += [viz.colorize_labels(example['label'], palette, self.ignore_label),
                 viz.colorize_labels(prediction['label'], palette, self.ignore_label)]
      titles += ['parsing gt', 'parsing']
    if 'normals' in prediction:
      panels += [viz.colorize_normals(example['normals']),
                 viz.colorize_normals(prediction['normals'])]
      titles += ['normals gt', 'normals']
    if 'contours' in prediction:
      prob = np.clip(np.asarray(prediction['contours'], np.float64), 0.0, 1.0)
      panels += [viz.colorize_contours(example['contours']),
                 np.round(prob * 255).astype(np.uint8)]
      titles += ['contours gt', 'contours']
    return viz.side_by_side(panels, titles=titles)


def format_table(title: str, values: dict) -> str:
  """'title' then one 'name  value' line per entry."""
  width = max(len(k) for k in values)
  return '\n'.join([title, '-' * max(width + 12, len(title))] +
                   [f'{k:<{width}}{float(v):12.4f}' for k, v in values.items()]) + '\n'


def format_depth_table(pixel: dict, image: dict) -> str:
  """Depth metrics, pixel-wise over the set (the scalars) and per-image means side by side."""
  lines = [f'{"depth":<10}{"pixel-wise":>12}{"per-image":>12}', '-' * 34]
  for k in DEPTH_KEYS + ('mae',):
    lines.append(f'{k:<10}{pixel[k]:12.4f}{image[k]:12.4f}')
  lines.append(f'{"count":<10}{int(pixel["count"]):>9d} px{int(image["count"]):>9d} im')
  return '\n'.join(lines) + '\n'
