"""DSRNet evaluation, prediction and rendering (depth only), the base of `CTKTMethod`.

CTKT (jaxseg.methods.ctkt.method) trains DSRNet with DENet and SPNet; at test time only DSRNet
runs (ctkt_dsr.md §1.1), from the LR depth alone: this class. Its own train step is supervised
DSRNet alone (the `configs/ctkt.py:dsr_only` baseline). Model `jaxseg.methods.ctkt.dsrnet.DSRNet`
from `config.model`; the scale is `config.dataset.augment.dsr_scale` (the recipe's).

Batch (the 'dsr' recipe, `jaxseg.data.recipes`; NumPy, NHW unless noted):
  depth_lr     (B, h, w) low-resolution input (for the 'nyu' protocol min-max normalised with
               the HR map's min / max; as given for 'middlebury')
  <dsr_key>    (B, H, W) HR target, `config.dataset.augment.dsr_key` ('depth'; Middlebury's
               8-bit-scale map is 'disparity'), in the same space as depth_lr
  valid        (B, H, W) bool target validity (every DSR source has it)
  minmax       (B, 2) (min, max) of the HR map, 'nyu' protocol only (to de-normalise)
  depth_lr_up  (B, H, W) the protocol's bicubic up-sampling (PIL / OpenCV), when
               `config.model.lr_up == 'pipeline'` (the residual path and the bicubic baseline;
               'jax' up-samples in the step instead, for sets whose LR map is not an exact 1/s
               of the target: ToFMark)
  image        (B, H, W, 3) the RGB / intensity guide: unused by DSRNet, kept for CTKT's DENet
  mask         (B,) bool, evaluation only (False = padding example)
The network sees values divided by `config.model.input_scale` (1; 255 for 8-bit maps); its
prediction is multiplied back.

Loss (ctkt_dsr.md §6: L_DSR = L1): mean |D_sr - D_hr| over the valid pixels of the global batch
(`loss.kind='l2'`: squared error), in the network's value space.

Evaluation (ctkt_dsr.md §8): prediction (resized bilinearly to the target when the sizes differ)
and target are mapped to the reporting units: de-normalised with `minmax` when
`evaluation.denormalize` ('nyu' protocol), then multiplied by `evaluation.units_scale`
(NYU: metres -> cm, x100). `evaluation.border` pixels are cropped on each side (NYU 6), invalid
and padding pixels are dropped. RMSE and MAD (mean absolute difference) per image, averaged over
images (the protocols' numbers), and pixel-wise over the set, for DSRNet and for the bicubic
up-sampling of the input (the baseline every DSR table starts with).
"""
import jax
import jax.numpy as jnp
import numpy as np

from jaxseg import viz
from jaxseg.data import recipes
from jaxseg.losses.reduce import global_mean
from jaxseg.methods.base import Method
from jaxseg.methods.ctkt import checks
from jaxseg.methods.ctkt.loss import dsr_loss_sum
from jaxseg.methods.ctkt.metrics import border_mask, error_sums, summarize_errors, to_units
from jaxseg.methods.ctkt.dsrnet import bicubic_upsample, build_dsrnet
from jaxseg.nn.precision import compute_dtype
from jaxseg.nn import resize_bilinear
from jaxseg.training.state import TrainState

MIN_PANEL_HEIGHT = 128  # render: panels of smaller maps are zoomed (nearest) to this


class DsrMethod(Method):
  """Supervised depth SR with DSRNet (D-DBPN); see the module docstring."""

  check_config = staticmethod(checks.check_config)

  def __init__(self, config, meta, axis_name=None):
    super().__init__(config, meta, axis_name)
    aug, m = config.dataset.augment, config.model
    self.scale = int(aug.get('dsr_scale', 4))
    self.protocol = aug.get('dsr_protocol', 'nyu')
    self.target_key = aug.get('dsr_key', 'depth')
    self.lr_up = m.get('lr_up', 'pipeline')
    self.input_scale = float(m.get('input_scale', 1.0))
    self.model = build_dsrnet(m, self.scale, compute_dtype(m))
    keys = ['image', 'depth_lr', self.target_key, 'valid']
    if self.protocol == 'nyu':
      keys.append('minmax')
    if self.lr_up == 'pipeline':
      keys.append('depth_lr_up')
    self.batch_keys = tuple(keys)
    #: evaluation / prediction read the LR depth (and targets) only: no RGB
    self.eval_keys = tuple(k for k in keys if k != 'image')
    self.tx = None

  # -- state ------------------------------------------------------------------------------
  def init_state(self, rng, batch):
    """Initial state; the parameter shapes do not depend on `batch` (it may lack 'image')."""
    del batch
    init_rng, state_rng = jax.random.split(rng)
    params = self.init_variables(init_rng, None)['params']
    return TrainState.create(params, {}, self._ensure_tx(params), state_rng)

  def init_variables(self, rng, image):
    """Variables for a (1, 2, 2, 1) LR map: DSRNet's parameter shapes do not depend on the
    spatial size (`image` is unused)."""
    del image
    return self.model.init(rng, jnp.zeros((1, 2, 2, 1), jnp.float32), train=False)

  def eval_transform(self):
    """Evaluation / prediction examples without the RGB image (DSRNet reads depth only)."""
    return recipes.make_eval_transform(self.config.dataset.augment, self.eval_keys)

  # -- network in / out -------------------------------------------------------------------
  def dsr_params(self, params):
    """DSRNet's own params inside the state's params (CTKT: params['dsr']['net'])."""
    return params

  def _net(self, params, batch, train=False):
    """(B, h s, w s) prediction in the recipe's value space (network output * input_scale)."""
    lr = batch['depth_lr'][..., None].astype(jnp.float32) / self.input_scale
    up = None
    if self.lr_up == 'pipeline':
      up = batch['depth_lr_up'][..., None].astype(jnp.float32) / self.input_scale
    out = self.model.apply({'params': self.dsr_params(params)}, lr, up, train=train)
    return out['depth'][..., 0] * self.input_scale

  def _at_target(self, pred, size):
    """Resize (B, h, w) to the target size (bilinear, half-pixel) when they differ."""
    if pred.shape[1:3] == tuple(size):
      return pred
    return resize_bilinear(pred[..., None], tuple(size), align_corners=False)[..., 0]

  def _bicubic(self, batch, size):
    """The bicubic baseline (B, H, W) in the recipe's space, at the target size."""
    if self.lr_up == 'pipeline':
      return batch['depth_lr_up'].astype(jnp.float32)
    lr = batch['depth_lr'][..., None].astype(jnp.float32)
    b = lr.shape[0]
    return jax.image.resize(lr, (b, *size, 1), 'cubic')[..., 0]

  # -- loss -------------------------------------------------------------------------------
  def loss(self, pred, batch):
    """Global mean L1 (or L2) over valid pixels, in the network's value space."""
    s, n = dsr_loss_sum(pred / self.input_scale, batch[self.target_key] / self.input_scale,
                        batch['valid'], self.config.loss.kind)
    return global_mean(s, n, self.axis_name)

  # -- steps ------------------------------------------------------------------------------
  def train_step(self, state, batch):
    terms = {}
    if self.lr_up == 'pipeline':  # the same loss of the bicubic input, for reference
      terms['loss_bicubic'] = self.loss(batch['depth_lr_up'].astype(jnp.float32), batch)

    def loss_fn(params):
      return self.loss(self._net(params, batch, train=True), batch), (terms, state.batch_stats)
    return self.optimizer_step(state, loss_fn)

  def eval_step(self, state, batch):
    """-> {'dsrnet': error_sums, 'bicubic': error_sums} in the reporting units."""
    ev = self.config.evaluation
    target = batch[self.target_key].astype(jnp.float32)
    size = target.shape[1:3]
    pred = self._at_target(self._net(state.params, batch), size)
    bicubic = self._bicubic(batch, size)
    minmax = batch.get('minmax')
    units = lambda v: to_units(v, minmax, bool(ev.denormalize), float(ev.units_scale))
    ok = jnp.isfinite(target) & batch['valid'].astype(bool)
    ok &= batch['mask'].astype(bool)[:, None, None]
    ok &= jnp.asarray(border_mask(*size, int(ev.border)))[None]
    gt = units(target)
    sums = {'dsrnet': error_sums(units(pred), gt, ok),
            'bicubic': error_sums(units(bicubic), gt, ok)}
    if self.axis_name is not None:
      sums = jax.lax.psum(sums, self.axis_name)
    return sums

  def summarize(self, sums):
    """-> scalars 'rmse', 'mad' (per-image means, the protocols' numbers), 'rmse_pixel',
    'mad_pixel', 'bicubic/*' the same for the baseline; a table in the reporting units."""
    net, bic = summarize_errors(sums['dsrnet']), summarize_errors(sums['bicubic'])
    scalars = {k: net[k] for k in ('rmse', 'mad', 'rmse_pixel', 'mad_pixel')}
    scalars.update({f'bicubic/{k}': bic[k] for k in ('rmse', 'mad', 'rmse_pixel', 'mad_pixel')})
    ev = self.config.evaluation
    lines = [f'depth SR x{self.scale} ({self.protocol} protocol, {self.target_key}), units: '
             f'{ev.units}, border crop {int(ev.border)} px',
             f'{"":<12}{"DSRNet":>12}{"bicubic":>12}', '-' * 36]
    names = {'rmse': 'rmse', 'mad': 'mad', 'rmse_pixel': 'rmse (px)', 'mad_pixel': 'mad (px)'}
    for k, label in names.items():
      lines.append(f'{label:<12}{net[k]:12.4f}{bic[k]:12.4f}')
    lines.append(f'rmse / mad: per-image means over {int(net["images"])} images; (px): '
                 f'pixel-wise over {int(net["count"])} px')
    return scalars, '\n'.join(lines) + '\n'

  def predict_step(self, state, batch):
    """-> 'depth' DSRNet, 'bicubic' the baseline: (B, H, W) at the target size, in the recipe's
    value space (normalised for the 'nyu' protocol; `render` maps them to units)."""
    size = batch[self.target_key].shape[1:3]
    return {'depth': self._at_target(self._net(state.params, batch), size),
            'bicubic': self._bicubic(batch, size)}

  def render(self, example, prediction, raw_image):
    """Guide image, LR input, bicubic, DSRNet, target (one shared depth colour range), and
    |DSRNet - target| in the reporting units (titles give the RMSEs and the error scale)."""
    ev = self.config.evaluation
    minmax = np.asarray(example['minmax'])[None] if 'minmax' in example else None
    units = lambda v: to_units(np.asarray(v, np.float64)[None], minmax, bool(ev.denormalize),
                               float(ev.units_scale))[0]
    target = units(example[self.target_key])
    ok = np.isfinite(target) & np.asarray(example['valid'], bool)
    lo, hi = (float(target[ok].min()), float(target[ok].max())) if ok.any() else (0.0, 1.0)

    def colour(v, valid=None):
      # colorize_depth treats <= 0 as invalid: shift so that `lo` maps to 1 (0 stays valid).
      valid = np.isfinite(v) if valid is None else valid
      return viz.colorize_depth(np.where(valid, np.clip(v, lo, hi) - lo + 1.0, 0.0), 1.0,
                                hi - lo + 1.0)

    pred, bicubic = units(prediction['depth']), units(prediction['bicubic'])
    if pred.shape != target.shape:
      pred = np.asarray(self._at_target(jnp.asarray(pred)[None], target.shape))[0]
    rmse = lambda v: float(np.sqrt(np.mean(np.square(v[ok] - target[ok])))) if ok.any() else 0.0
    err = np.where(ok, np.abs(pred - target), 0.0)
    emax = max(float(err.max()), 1e-12)
    err_rgb = viz.apply_colormap(err / emax)
    err_rgb[~ok] = 0
    panels = [np.asarray(raw_image), colour(units(example['depth_lr'])), colour(bicubic),
              colour(pred), colour(target, ok), err_rgb]
    titles = ['guide', f'input x{self.scale}', f'bicubic {rmse(bicubic):.3g}',
              f'DSRNet {rmse(pred):.3g}', f'target ({ev.units})', f'|err| max {emax:.3g}']
    zoom = max(1, -(-MIN_PANEL_HEIGHT // target.shape[0]))  # small maps: nearest zoom
    panels = [np.repeat(np.repeat(p, zoom, 0), zoom, 1) for p in panels]
    return viz.side_by_side(panels, titles=titles)
