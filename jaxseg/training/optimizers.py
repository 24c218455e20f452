"""Optimizers: poly schedule, PyTorch-style SGD, regex parameter groups, multi-network trees.

Parameter groups (`make_optimizer`) are an ordered list of dicts
`{name, pattern, lr_mult=1, weight_decay=None, frozen=False, optional=False, repeat=1}`; `pattern` is searched
(`re.search`) in the '/'-joined parameter path (e.g. 'aspp/branch_0/bias'), the first matching
group wins, unmatched parameters go to group 'default'. Each group has its own optax chain with
learning rate `schedule(step) * lr_mult`; frozen groups get `optax.set_to_zero()` (no update, no
weight decay, no optimizer state). `repeat` k > 1 (SGD only) applies the group's update k times
per step, as PyTorch does for a tensor listed k times in one param group
(`sgd_pytorch_repeated`; AdaptSegNet's released optimizer, bug compatibility).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

DEFAULT_GROUP = 'default'


def _get(cfg: Any, key: str, default: Any = None) -> Any:
  """Field of a dict or ml_collections.ConfigDict; `default` when missing or None."""
  value = cfg.get(key, default) if cfg is not None else default
  return default if value is None else value


# ------------------------------------------------------------------------------------ schedules


def poly_schedule(base_lr: float, total_steps: int, power: float = 0.9, end_lr: float = 0.0,
                  warmup_steps: int = 0, warmup_ratio: float = 0.0,
                  update_every: int = 1) -> optax.Schedule:
  """`(base_lr - end_lr) * (1 - step / total_steps) ** power + end_lr`, constant after the end.

  `total_steps` is the decay horizon (it may exceed the number of steps trained, as in
  AdaptSegNet: horizon 250k, stop at 150k). Optional linear warmup multiplies the rate by
  `warmup_ratio + (1 - warmup_ratio) * step / warmup_steps` for `step < warmup_steps`.
  `update_every` > 1 holds the rate for that many steps (deeplab-pytorch updates every 10).
  """
  if total_steps <= 0:
    raise ValueError(f'total_steps must be positive, got {total_steps}')

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    if update_every > 1:
      step = jnp.floor(step / update_every) * update_every
    frac = jnp.clip(step / total_steps, 0.0, 1.0)
    lr = (base_lr - end_lr) * (1.0 - frac) ** power + end_lr
    if warmup_steps > 0:
      ramp = jnp.minimum(step / warmup_steps, 1.0)
      lr = lr * (warmup_ratio + (1.0 - warmup_ratio) * ramp)
    return lr

  return schedule


def step_schedule(base_lr: float, boundaries: Sequence[int], decay_factor: float = 0.1,
                  warmup_steps: int = 0, warmup_ratio: float = 0.0) -> optax.Schedule:
  """`base_lr * decay_factor ** (number of boundaries <= step)`: the rate is multiplied by
  `decay_factor` from each boundary step on (PyTorch MultiStepLR / DBPN / PMBANet's lr / 10 at
  given epochs). Optional linear warmup as in `poly_schedule`."""
  bounds = sorted(int(b) for b in boundaries)
  if any(b <= 0 for b in bounds):
    raise ValueError(f'step schedule boundaries must be positive steps, got {bounds}')

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    passed = sum((step >= b).astype(jnp.float32) for b in bounds) if bounds else 0.0
    lr = base_lr * jnp.power(jnp.float32(decay_factor), passed)
    if warmup_steps > 0:
      ramp = jnp.minimum(step / warmup_steps, 1.0)
      lr = lr * (warmup_ratio + (1.0 - warmup_ratio) * ramp)
    return lr

  return schedule


SCHEDULES = ('poly', 'constant', 'step')


def make_schedule(opt_cfg: Any, total_steps: int) -> optax.Schedule:
  """Base schedule from `opt_cfg`: `schedule` 'poly' (default), 'constant' or 'step'.

  Fields: `learning_rate`, `power` (0.9), `end_lr` (0), `decay_steps` (horizon, default
  `total_steps`), `warmup_steps` (0), `warmup_ratio` (0), `update_every` (1); 'step':
  `boundaries` (steps) and `decay_factor` (0.1), see `step_schedule`.
  """
  if _get(opt_cfg, 'learning_rate') is None:
    raise ValueError('opt_cfg.learning_rate is required')
  base_lr = float(_get(opt_cfg, 'learning_rate'))
  kind = _get(opt_cfg, 'schedule', 'poly')
  if kind == 'constant':
    return optax.constant_schedule(base_lr)
  if kind == 'poly':
    return poly_schedule(base_lr, int(_get(opt_cfg, 'decay_steps', total_steps)),
                         power=float(_get(opt_cfg, 'power', 0.9)),
                         end_lr=float(_get(opt_cfg, 'end_lr', 0.0)),
                         warmup_steps=int(_get(opt_cfg, 'warmup_steps', 0)),
                         warmup_ratio=float(_get(opt_cfg, 'warmup_ratio', 0.0)),
                         update_every=int(_get(opt_cfg, 'update_every', 1)))
  if kind == 'step':
    return step_schedule(base_lr, tuple(_get(opt_cfg, 'boundaries', ())),
                         decay_factor=float(_get(opt_cfg, 'decay_factor', 0.1)),
                         warmup_steps=int(_get(opt_cfg, 'warmup_steps', 0)),
                         warmup_ratio=float(_get(opt_cfg, 'warmup_ratio', 0.0)))
  raise ValueError(f'opt_cfg.schedule must be one of {SCHEDULES}, got {kind!r}')


def _scaled(schedule: optax.Schedule, mult: float) -> optax.Schedule:
  return lambda step: schedule(step) * mult


# ------------------------------------------------------------------------------------ optimizers


def sgd_pytorch(learning_rate, momentum: float = 0.9, weight_decay: float = 0.0,
                nesterov: bool = False) -> optax.GradientTransformation:
  """PyTorch `torch.optim.SGD`: `g += wd * p; v = m * v + g; p -= lr * v` (nesterov:
  `p -= lr * (g + m * v)`). Weight decay is added to the gradient BEFORE momentum (L2, not
  AdamW-style decoupled decay). `learning_rate` is a float or an optax schedule.
  """
  parts = []
  if weight_decay:
    parts.append(optax.add_decayed_weights(weight_decay))
  parts.append(optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov))
  return optax.chain(*parts)


class RepeatedSgdState(NamedTuple):
  count: jax.Array   # int32: steps taken (the first step starts each copy's buffer afresh)
  trace: Any         # momentum buffer, one per tensor (shared by its copies)


def sgd_pytorch_repeated(learning_rate, momentum: float = 0.9, weight_decay: float = 0.0,
                         repeat: int = 1) -> optax.GradientTransformation:
  """`torch.optim.SGD` (plain momentum, L2 decay) for tensors listed `repeat` times in a group.

  PyTorch walks the list: each copy adds `wd * p` (p as moved by the copies before it) to the
  same gradient, pushes it into the momentum buffer and moves p. On the first step every copy
  starts its own buffer (`buf = d`) and the last one is kept; later the copies update the one
  shared buffer in place (`buf = m * buf + d`). `repeat=1` equals `sgd_pytorch`.
  """
  schedule = learning_rate if callable(learning_rate) else optax.constant_schedule(learning_rate)

  def init(params):
    return RepeatedSgdState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

  def update(grads, state, params):
    if params is None:
      raise ValueError('sgd_pytorch_repeated needs params')
    lr = schedule(state.count)
    first = state.count == 0

    def leaf(g, buf, p):
      p_now = p
      for _ in range(repeat):
        d = g + weight_decay * p_now
        buf = jnp.where(first, d, momentum * buf + d)
        p_now = p_now - lr * buf
      return p_now - p, buf

    out = jax.tree.map(leaf, grads, state.trace, params)
    is_pair = lambda x: isinstance(x, tuple) and len(x) == 2
    updates = jax.tree.map(lambda o: o[0], out, is_leaf=is_pair)
    trace = jax.tree.map(lambda o: o[1], out, is_leaf=is_pair)
    return updates, RepeatedSgdState(state.count + 1, trace)

  return optax.GradientTransformation(init, update)


def _base_optimizer(name: str, learning_rate, weight_decay: float,
                    opt_cfg: Any, repeat: int = 1) -> optax.GradientTransformation:
  """One group's chain. 'sgd': `sgd_pytorch`; 'adam': PyTorch Adam (L2 weight decay added to
  the gradient); 'adamw': decoupled decay (optax.adamw, decay scaled by the learning rate)."""
  if name == 'sgd' and repeat > 1:
    if bool(_get(opt_cfg, 'nesterov', False)):
      raise ValueError('param group repeat > 1 reproduces plain-momentum SGD; nesterov=True '
                       'is not supported with it')
    return sgd_pytorch_repeated(learning_rate, float(_get(opt_cfg, 'momentum', 0.9)),
                                weight_decay, repeat)
  if repeat > 1:
    raise ValueError(f'param group repeat > 1 needs optimizer name sgd, got {name!r}')
  if name == 'sgd':
    return sgd_pytorch(learning_rate, momentum=float(_get(opt_cfg, 'momentum', 0.9)),
                       weight_decay=weight_decay, nesterov=bool(_get(opt_cfg, 'nesterov', False)))
  b1 = float(_get(opt_cfg, 'b1', 0.9))
  b2 = float(_get(opt_cfg, 'b2', 0.999))
  eps = float(_get(opt_cfg, 'eps', 1e-8))
  if name == 'adam':
    adam = optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
    return optax.chain(optax.add_decayed_weights(weight_decay), adam) if weight_decay else adam
  if name == 'adamw':
    return optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
  raise ValueError(f"opt_cfg.name must be 'sgd', 'adam' or 'adamw', got {name!r}")


# -------------------------------------------------------------------------------- param groups


def param_path(path: Sequence[Any]) -> str:
  """jax key path -> 'a/b/c'."""
  parts = []
  for k in path:
    for attr in ('key', 'name', 'idx'):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return '/'.join(parts)


def _check_groups(groups) -> List[Mapping]:
  """Groups as an ordered list of mappings with `name`, or a mapping name -> group.

  The mapping form (e.g. a ConfigDict) lets command lines override one field:
  `--config.optimizer.param_groups.head_weight.lr_mult=1`.
  """
  if isinstance(groups, Mapping) or hasattr(groups, 'items') and not isinstance(groups, (list, tuple)):
    groups = [dict(g, name=n) for n, g in groups.items()]
  groups = list(groups or ())
  names = [_get(g, 'name') for g in groups]
  for g, n in zip(groups, names):
    if not n or _get(g, 'pattern') is None:
      raise ValueError(f'param group needs a name and a pattern: {g!r}')
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    raise ValueError(f'duplicate param group names: {dupes}')
  return groups


def param_group_labels(params: Any, groups: Optional[Sequence[Mapping]]) -> Any:
  """Pytree like `params` whose leaves are group names (first regex match, else 'default')."""
  groups = _check_groups(groups)
  compiled = [(_get(g, 'name'), re.compile(_get(g, 'pattern'))) for g in groups]

  def label(path, _):
    s = param_path(path)
    for name, rx in compiled:
      if rx.search(s):
        return name
    return DEFAULT_GROUP

  return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(opt_cfg: Any, params: Any, total_steps: int) -> optax.GradientTransformation:
  """`optax.multi_transform` over the parameter groups of `opt_cfg.param_groups`.

  `opt_cfg` (dict or ConfigDict): `name` ('sgd' | 'adam' | 'adamw'), `learning_rate`,
  `momentum`, `weight_decay`, `nesterov`, `b1`, `b2`, `eps`, `schedule` ('poly' | 'constant'),
  `power` and the other `make_schedule` fields, and `param_groups` (see module docstring).
  `params` is used to validate the groups: a group that matches nothing is an error (typos in
  patterns fail loudly) unless it sets `optional: True`. The returned transformation labels
  whatever tree it is given (the labels are recomputed from paths, not frozen to `params`).
  """
  groups = _check_groups(_get(opt_cfg, 'param_groups', ()))
  name = _get(opt_cfg, 'name', 'sgd')
  base_wd = float(_get(opt_cfg, 'weight_decay', 0.0))
  schedule = make_schedule(opt_cfg, total_steps)

  used = set(jax.tree_util.tree_leaves(param_group_labels(params, groups)))
  unused = [_get(g, 'name') for g in groups
            if _get(g, 'name') not in used and not _get(g, 'optional', False)]
  if unused:
    raise ValueError(f'param groups {unused} match no parameter; patterns are searched in '
                     f"'/'-joined paths such as {_example_paths(params)}")

  transforms: Dict[str, optax.GradientTransformation] = {}
  for g in groups + [{'name': DEFAULT_GROUP}]:
    gname = _get(g, 'name')
    if gname in transforms:  # an explicit 'default' group overrides the implicit one
      continue
    if _get(g, 'frozen', False):
      transforms[gname] = optax.set_to_zero()
      continue
    wd = float(_get(g, 'weight_decay', base_wd))
    lr = _scaled(schedule, float(_get(g, 'lr_mult', 1.0)))
    transforms[gname] = _base_optimizer(name, lr, wd, opt_cfg, int(_get(g, 'repeat', 1)))
  return optax.multi_transform(transforms, lambda p: param_group_labels(p, groups))


def _example_paths(params: Any, n: int = 3) -> List[str]:
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  return [param_path(path) for path, _ in leaves[:n]]


def make_multi_tree_optimizer(
    txs: Mapping[str, optax.GradientTransformation]) -> optax.GradientTransformation:
  """One chain per top-level key of params shaped `{'generator': tree, 'discriminator': tree}`.

  E.g. AdaptSegNet: `{'generator': make_optimizer(sgd_cfg, ...), 'discriminator':
  optax.adam(poly, b1=0.9, b2=0.99)}`. Each tree moves exactly as its own chain alone would.
  """
  txs = dict(txs)

  def labels(params):
    def top_key(path, _):
      key = param_path(path[:1])
      if key not in txs:
        raise KeyError(f'no optimizer for top-level params {key!r}; have {sorted(txs)}')
      return key
    return jax.tree_util.tree_map_with_path(top_key, params)  # keeps container types

  return optax.multi_transform(txs, labels)


# -------------------------------------------------------------------------------------- presets


def head_param_groups(head_prefix: str, lr_mult: float = 10.0,
                      bias_lr_mult: Optional[float] = None,
                      bias_weight_decay: Optional[float] = None,
                      freeze_bn: bool = False) -> List[Dict[str, Any]]:
  """Groups for "backbone 1x, head(s) faster" recipes; the backbone falls to 'default'.

  `head_prefix` is a regex matched at the start of a path segment ('aspp' covers 'aspp' and
  'aspp_aux', also under an MSC 'base/' prefix). With `bias_lr_mult`, head biases get their own
  group ('head_bias', weight decay `bias_weight_decay`, None = inherit). With `freeze_bn`, BatchNorm
  params (modules `bn*` and `downsample_bn`) are frozen: no update and no weight decay.
  AdaptSegNet's simplification of DeepLab's groups (all head params 10x, decay everywhere, BN
  affine frozen) is `head_param_groups('aspp', 10.0, freeze_bn=True)`. DeepLab v2's own groups:
  `jaxseg.methods.deeplabv2.param_groups`.
  """
  head = rf'(^|/)({head_prefix})[^/]*/'
  groups = []
  if freeze_bn:
    groups.append({'name': 'frozen_bn', 'pattern': r'(^|/)(bn[^/]*|downsample_bn)/',
                   'frozen': True})
  if bias_lr_mult is not None:
    groups.append({'name': 'head_bias', 'pattern': head + r'(.*/)?bias$',
                   'lr_mult': float(bias_lr_mult), 'weight_decay': bias_weight_decay})
  groups.append({'name': 'head_weight', 'pattern': head, 'lr_mult': float(lr_mult)})
  return groups
