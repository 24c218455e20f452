"""AdaptSegNet tenant: one jitted / pmap-able step = one iteration of the released code (spec §3).

State: `params = {'generator': DeepLab v2 tree, 'discriminator': {'level1': D1, 'level2': D2}}`,
`batch_stats = {'generator': ...}`, one `optax.multi_transform` over the two trees (G: SGD with
parameter groups, D: Adam; `jaxseg.training.optimizers.make_multi_tree_optimizer`).
Batch: `{'source': {'image' (B, Hs, Ws, 3), 'label' (B, Hs, Ws)}, 'target': {'image' (B, Ht, Wt,
3)}}` (the loop's `second_train_source`; target labels are never read). Source-only training
(every adversarial weight 0) has no discriminator and reads plain source batches.

The step (the order of the release; levels are `model.LEVELS`, pred1 = conv4, pred2 = conv5):
  1. G on the source batch (train mode: batch statistics, running statistics updated); every
     prediction is up-sampled bilinearly (`model.align_corners`, True in the release) to the
     label size; L_seg = CE(pred2) + loss.seg_aux_weight * CE(pred1).
  2. G on the target batch (running statistics updated again); predictions up-sampled to the
     image size; L_adv = sum_l loss.adv_weights[l] * GAN(D_l(softmax(pt_l)), SOURCE_LABEL) with D's
     parameters under `stop_gradient` (gradients reach G through D, never D).
  3. L_D = sum_l [GAN(D_l(sg(softmax(ps_l))), SOURCE) + GAN(D_l(sg(softmax(pt_l))), TARGET)] / 2
     on `stop_gradient`-ed probabilities (gradients reach D only).
  4. One update of both trees from grad(L_seg + L_adv + L_D): each term only has a gradient on its
     own tree, so this is the release's G step plus its two D steps.
Evaluation: SegmentationMethod's (pred2 = `logits` up-sampled to the label size, one confusion
matrix over the split) on the generator's variables.
"""
import os

import jax
import jax.numpy as jnp
from absl import logging

from jaxseg import convert
from jaxseg.losses.segmentation import cross_entropy
from jaxseg.methods.adaptsegnet import checks, discriminator
from jaxseg.methods.adaptsegnet.loss import (SOURCE_LABEL, TARGET_LABEL, domain_accuracy,
                                             gan_loss)
from jaxseg.methods.adaptsegnet.model import (LEVEL_OUTPUTS, LEVELS, build_discriminator,
                                              build_generator, levels)
from jaxseg.methods.base import _put_like
from jaxseg.methods.segmentation import SegmentationMethod
from jaxseg.nn import resize_bilinear
from jaxseg.training import optimizers
from jaxseg.training.state import TrainState


# The release's SGD parameter list (spec §8.1): Bottleneck convs 3x, downsample convs 4x.
TORCH_DUPLICATES = (
    dict(name='released_duplicates_4x', pattern=r'(^|/)backbone/layer\d_\d+/downsample_conv/',
         repeat=4),
    dict(name='released_duplicates_3x', pattern=r'(^|/)backbone/layer\d_\d+/conv\d/', repeat=3),
)


def _with_horizon(opt_cfg, config) -> dict:
  """`opt_cfg` as a dict whose poly horizon `decay_steps` 0 means `config.num_train_steps`."""
  o = opt_cfg.to_dict() if hasattr(opt_cfg, 'to_dict') else dict(opt_cfg)
  o['decay_steps'] = o.get('decay_steps') or config.num_train_steps
  return o


def generator_optimizer(config) -> dict:
  """`config.optimizer` with the groups the method adds, in first-match order:
  `unused_aspp` (frozen: ASPP branches beyond `model.aspp_branches` get no gradient, and PyTorch
  skips such tensors, weight decay included), the config's groups, then with
  `optimizer.torch_duplicates` the release's repeated backbone convs (`TORCH_DUPLICATES`)."""
  o = _with_horizon(config.optimizer, config)
  groups = o.get('param_groups') or {}
  groups = ([dict(g, name=n) for n, g in groups.items()] if isinstance(groups, dict)
            else [dict(g) for g in groups])
  m = config.model
  n = m.get('aspp_branches', 0) or len(m.aspp_rates)
  if n < len(m.aspp_rates):
    unused = '|'.join(str(i) for i in range(n, len(m.aspp_rates)))
    groups.insert(0, dict(name='unused_aspp', pattern=rf'(^|/)aspp[^/]*/branch_({unused})/',
                          frozen=True))
  if o.pop('torch_duplicates', False):
    groups += [dict(g) for g in TORCH_DUPLICATES]
  o['param_groups'] = groups
  return o


class AdaptSegNetMethod(SegmentationMethod):
  """Output-space adversarial adaptation with one FCDiscriminator per level."""

  check_config = staticmethod(checks.check_config)

  def __init__(self, config, meta, axis_name=None):
    super().__init__(config, meta, axis_name)
    self.levels = levels(config)
    self.discriminator = build_discriminator(config.discriminator)
    self.second_train_source = 'target' if self.levels else None
    self.gan = config.loss.gan
    self.adv_weights = dict(zip(LEVELS, config.loss.adv_weights))
    self.seg_weights = {'level2': 1.0}
    if config.model.multi_level and config.loss.seg_aux_weight > 0:
      self.seg_weights['level1'] = float(config.loss.seg_aux_weight)

  def build_model(self, config, num_classes, axis_name):
    return build_generator(config.model, num_classes, axis_name)

  # -- state ------------------------------------------------------------------------------
  def init_state(self, rng, batch) -> TrainState:
    g_rng, d_rng, state_rng = jax.random.split(rng, 3)
    image = jnp.asarray(batch['image'][:1])
    variables = self.model.init(g_rng, image, train=False)
    probs = jnp.zeros(image.shape[:3] + (self.num_classes,), jnp.float32)
    d_keys = jax.random.split(d_rng, len(LEVELS))
    d_params = {lvl: self.discriminator.init(key, probs)['params']
                for lvl, key in zip(LEVELS, d_keys) if lvl in self.levels}
    params = {'generator': variables['params'], 'discriminator': d_params}
    batch_stats = {'generator': variables.get('batch_stats', {})}
    return TrainState.create(params, batch_stats, self._ensure_tx(params), state_rng)

  def _ensure_tx(self, params):
    if self.tx is None:
      c = self.config
      self.tx = optimizers.make_multi_tree_optimizer({
          'generator': optimizers.make_optimizer(generator_optimizer(c), params['generator'],
                                                 c.num_train_steps),
          'discriminator': optimizers.make_optimizer(
              _with_horizon(c.discriminator.optimizer, c), params['discriminator'],
              c.num_train_steps),
      })
    return self.tx

  def eval_variables(self, state):
    return {'params': state.params['generator'], 'batch_stats': state.batch_stats['generator']}

  # -- losses -----------------------------------------------------------------------------
  def _up(self, logits, size):
    return resize_bilinear(logits.astype(jnp.float32), size, self.align_corners)

  def _d(self, d_params, probs):
    return self.discriminator.apply({'params': d_params}, probs)

  def objectives(self, params, batch_stats, source, target=None):
    """-> ({'seg', 'adv', 'disc'}: weighted objectives, metrics, new batch_stats).

    `seg` and `adv` depend on the generator only (D frozen), `disc` on the discriminators only.
    """
    ax, kind = self.axis_name, self.gan
    gbs = batch_stats['generator']
    out_s, gbs = self.apply_train(params['generator'], gbs, source['image'])
    size_s = source['label'].shape[1:3]
    up_s = {lvl: self._up(out_s[LEVEL_OUTPUTS[lvl]], size_s)
            for lvl in LEVELS if lvl in self.seg_weights or lvl in self.levels}
    metrics, seg = {}, jnp.zeros((), jnp.float32)
    for lvl, w in self.seg_weights.items():
      metrics[f'seg/{lvl}'] = cross_entropy(up_s[lvl], source['label'], self.ignore_label, ax)
      seg = seg + w * metrics[f'seg/{lvl}']
    adv = disc = jnp.zeros((), jnp.float32)
    if target is not None and self.levels:
      out_t, gbs = self.apply_train(params['generator'], gbs, target['image'])
      size_t = target['image'].shape[1:3]
      d_frozen = jax.lax.stop_gradient(params['discriminator'])
      for lvl in self.levels:
        p_s = jax.nn.softmax(up_s[lvl], axis=-1)
        p_t = jax.nn.softmax(self._up(out_t[LEVEL_OUTPUTS[lvl]], size_t), axis=-1)
        metrics[f'adv/{lvl}'] = gan_loss(self._d(d_frozen[lvl], p_t), SOURCE_LABEL, kind, ax)
        adv = adv + self.adv_weights[lvl] * metrics[f'adv/{lvl}']
        d_params = params['discriminator'][lvl]
        logit_s = self._d(d_params, jax.lax.stop_gradient(p_s))
        logit_t = self._d(d_params, jax.lax.stop_gradient(p_t))
        d_s = gan_loss(logit_s, SOURCE_LABEL, kind, ax) / 2
        d_t = gan_loss(logit_t, TARGET_LABEL, kind, ax) / 2
        metrics[f'd/{lvl}'] = d_s + d_t
        disc = disc + d_s + d_t
        metrics[f'd_acc_source/{lvl}'] = domain_accuracy(logit_s, SOURCE_LABEL, kind, ax)
        metrics[f'd_acc_target/{lvl}'] = domain_accuracy(logit_t, TARGET_LABEL, kind, ax)
    metrics.update({'loss_seg': seg, 'loss_adv': adv, 'loss_d': disc})
    return {'seg': seg, 'adv': adv, 'disc': disc}, metrics, {'generator': gbs}

  def train_step(self, state, batch):
    source, target = (batch['source'], batch.get('target')) if 'source' in batch else (
        batch, None)

    def loss_fn(params):
      terms, metrics, batch_stats = self.objectives(params, state.batch_stats, source, target)
      return terms['seg'] + terms['adv'] + terms['disc'], (metrics, batch_stats)
    return self.optimizer_step(state, loss_fn)

  # -- weights ----------------------------------------------------------------------------
  def pretrained_prefix(self, state):
    return 'generator'

  def pretrained_keep_init(self, state, layout):
    keep = ['discriminator']
    if layout == 'deeplabv2' and self.config.model.multi_level:
      keep.append('generator/aspp_aux')  # the DeepLab init has one classifier (on conv5)
    return keep

  def initialize_from_config(self, state):
    """`config.init_from` into the generator, then `config.discriminator.init_from[l]` (a
    reference FCDiscriminator state dict per level, '' = keep the initialisation)."""
    state = super().initialize_from_config(state)
    paths = tuple(self.config.discriminator.get('init_from', ()) or ())
    d_params = dict(state.params['discriminator'])
    for lvl, path in zip(LEVELS, paths):
      if not path:
        continue
      name = os.fspath(path)
      new = discriminator.from_torch_state_dict(convert.read_weights(name), self.num_classes,
                                                self.config.discriminator.ndf, name)
      d_params[lvl] = jax.tree.map(_put_like, d_params[lvl], new)
      text = f'discriminator {lvl} from {name}'
      logging.info('%s', text)
      if jax.process_index() == 0:
        print(text, flush=True)
    params = dict(state.params, discriminator=d_params)
    return state.replace(params=params)


__all__ = ['AdaptSegNetMethod']
