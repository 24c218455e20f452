"""CTKT (Sun et al., CVPR 2021): DSRNet trained with DENet, cross-task distillation and SPNet.

  python -m jaxseg.main --config=configs/ctkt.py --workdir=runs/ctkt

Params {'dsr': {'net': DSRNet, 'side1'..'sideN'}, 'de': {'net': DENet, 'side1'..'sideN'},
'sp': SPNet} (jaxseg.methods.ctkt.dsrnet / networks), one optimizer over the whole tree (rates
per tree through `config.optimizer.param_groups`). `config.ctkt.denet=False` is DSRNet alone
(params {'dsr': {'net'}}, the `:dsr_only` baseline). Evaluation and prediction run DSRNet alone
from the LR depth (`DsrMethod`; no RGB is read).

One train step (batch of the 'dsr' recipe plus the normalised RGB `image` and, with SPNet, the
`structure` edge target; values in the network space, i.e. divided by `model.input_scale`):
  L = L_DSR + L_DE + lambda_P L_P + lambda_A L_A + lambda_S L_S        (ctkt_dsr.md §6)
  L_DSR  masked L1 of D_sr (loss.kind)
  L_DE   alpha mean (1 - SSIM(D_de, D_hr)) / 2 + (1 - alpha) mean |D_de - D_hr|  (masked)
  L_P, L_A  distillation from the teacher to the student, chosen per step by
         `jaxseg.methods.ctkt.distill.teacher_mask` (ctkt.teacher, ctkt.teacher_granularity)
  L_S    class-balanced BCE of SPNet's structure logits against `structure`; SPNet fuses
         F_sr^N and F_de^N weighted by U from the stop-gradient errors |D - D_hr|
Logged: loss_dsr, loss_de, loss_p, loss_a, loss_s, teacher_dsr (the fraction of roles DSRNet
held: with granularity 'batch' the fraction of steps DSRNet teaches), loss_bicubic, grad_norm.
"""
import jax
import jax.numpy as jnp

from jaxseg.losses.reduce import global_mean
from jaxseg.methods.ctkt import distill
from jaxseg.methods.ctkt.dsr_method import DsrMethod
from jaxseg.methods.ctkt.loss import balanced_bce_sums, denet_loss_sums, dsr_loss_sum
from jaxseg.methods.ctkt.networks import DENet, SPNet, WithSideOutputs
from jaxseg.nn.precision import compute_dtype
from jaxseg.training.state import TrainState


class CTKTMethod(DsrMethod):
  """DSRNet + DENet + SPNet with cross-task distillation; see the module docstring."""

  def __init__(self, config, meta, axis_name=None):
    super().__init__(config, meta, axis_name)
    k, m = config.ctkt, config.model
    dtype, impl = compute_dtype(m), m.get('conv_impl', 'xla')
    self.use_denet = bool(k.denet)
    self.use_spnet = self.use_denet and bool(k.spnet)
    if self.use_denet:
      self.dsr_branch = WithSideOutputs(self.model, conv_impl=impl, dtype=dtype)
      denet = DENet(num_blocks=int(m.num_stages), features=int(k.denet_features),
                    conv_impl=impl, dtype=dtype)
      self.de_branch = WithSideOutputs(denet, conv_impl=impl, dtype=dtype)
    if not self.use_denet:
      self.batch_keys = self.eval_keys  # DSRNet alone reads no RGB
    if self.use_spnet:
      self.spnet = SPNet(width=int(k.spnet_width), depth=int(k.spnet_depth), conv_impl=impl,
                         dtype=dtype)
      self.batch_keys = tuple(self.batch_keys) + ('structure',)

  # -- state ------------------------------------------------------------------------------
  def dsr_params(self, params):
    return params['dsr']['net']

  def pretrained_prefix(self, state):
    return 'dsr/net'

  def init_variables(self, rng, image):
    """{'params': {'dsr', 'de', 'sp'}} for tiny inputs (no shape depends on the size)."""
    del image
    r_sr, r_de, r_sp = jax.random.split(rng, 3)
    lr = jnp.zeros((1, 2, 2, 1), jnp.float32)
    if not self.use_denet:
      return {'params': {'dsr': {'net': self.model.init(r_sr, lr)['params']}}}
    hw = 2 * self.scale
    params = {'dsr': self.dsr_branch.init(r_sr, lr)['params'],
              'de': self.de_branch.init(r_de, jnp.zeros((1, hw, hw, 3), jnp.float32))['params']}
    if self.use_spnet:
      f = jnp.zeros((1, hw, hw, self.model.features), jnp.float32)
      g = jnp.zeros((1, hw, hw, int(self.config.ctkt.denet_features)), jnp.float32)
      e = jnp.zeros((1, hw, hw), jnp.float32)
      params['sp'] = self.spnet.init(r_sp, f, g, e, e)['params']
    return {'params': params}

  # -- training ---------------------------------------------------------------------------
  def _inputs(self, batch):
    lr = batch['depth_lr'][..., None].astype(jnp.float32) / self.input_scale
    up = None
    if self.lr_up == 'pipeline':
      up = batch['depth_lr_up'][..., None].astype(jnp.float32) / self.input_scale
    return lr, up

  def ctkt_losses(self, params, batch):
    """-> (total, terms) of one step's CTKT objective (module docstring); local shares of
    global means (psum'd by `optimizer_step` under pmap)."""
    k, ax = self.config.ctkt, self.axis_name
    sg = jax.lax.stop_gradient
    lr, up = self._inputs(batch)
    target = batch[self.target_key].astype(jnp.float32) / self.input_scale
    valid = batch['valid'].astype(bool) & jnp.isfinite(target)
    sr = self.dsr_branch.apply({'params': params['dsr']}, lr, up, train=True)
    de = self.de_branch.apply({'params': params['de']},
                              batch['image'].astype(jnp.float32), train=True)
    l_dsr = global_mean(*dsr_loss_sum(sr['depth'], target, valid, self.config.loss.kind), ax)
    (ss, sn), (ls, ln) = denet_loss_sums(
        de['depth'], target, valid, max_val=float(k.ssim_max_val),
        filter_size=int(k.ssim_filter_size), filter_sigma=float(k.ssim_sigma))
    alpha = float(k.de_alpha)
    l_de = alpha * global_mean(ss, sn, ax) + (1.0 - alpha) * global_mean(ls, ln, ax)
    mask, _ = distill.teacher_mask(sr, de, target, valid, k.teacher, k.teacher_granularity, ax)
    terms = {'loss_dsr': l_dsr, 'loss_de': l_de,
             'teacher_dsr': global_mean(jnp.sum(mask.astype(jnp.float32)), mask.size, ax)}
    total = l_dsr + l_de
    if float(k.lambda_p):
      l_p = global_mean(*distill.output_distillation(sr['side'], de['side'], mask, valid), ax)
      terms['loss_p'] = l_p
      total = total + float(k.lambda_p) * l_p
    if float(k.lambda_a):
      l_a = global_mean(*distill.affinity_distillation(
          sr['hr_features'], de['hr_features'], mask, int(k.affinity_pool),
          k.affinity_norm), ax)
      terms['loss_a'] = l_a
      total = total + float(k.lambda_a) * l_a
    if self.use_spnet:
      err = lambda d: sg(jnp.where(valid, jnp.abs(d[..., 0] - target), 0.0))
      sp = self.spnet.apply({'params': params['sp']}, sr['hr_features'][-1],
                            de['hr_features'][-1], err(sr['depth']), err(de['depth']))
      l_s = global_mean(*balanced_bce_sums(sp['logits'], batch['structure'], valid, ax), ax)
      terms['loss_s'] = l_s
      total = total + float(k.lambda_s) * l_s
    return total, terms

  def train_step(self, state: TrainState, batch: dict):
    if not self.use_denet:
      return super().train_step(state, batch)
    extra = {}
    if self.lr_up == 'pipeline':  # the L_DSR of the bicubic input, for reference
      extra['loss_bicubic'] = self.loss(batch['depth_lr_up'].astype(jnp.float32), batch)

    def loss_fn(params):
      total, terms = self.ctkt_losses(params, batch)
      return total, ({**terms, **extra}, state.batch_stats)
    return self.optimizer_step(state, loss_fn)
