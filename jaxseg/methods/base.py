"""What a method supplies to the one train loop (`jaxseg.runner.loop`).

A method owns its model(s), losses and pure steps; it never writes a loop, a checkpoint
or a data loader. Steps are pure functions of (state, batch). Built with `axis_name`, the
steps reduce across that axis with psum/pmean and run under `jax.pmap`; built without it
they run under `jax.jit` over a device mesh, where XLA inserts the collectives.
"""
import abc
import os
from typing import Any, Callable, Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from jaxseg import convert
from jaxseg.convert.layouts import join
from jaxseg.convert.load import is_flax_flat
from jaxseg.data import recipes
from jaxseg.training import optimizers
from jaxseg.training.state import TrainState

_COLLECTIONS = ('params', 'batch_stats')


def _strip_collection(key: str) -> str:
  head, _, rest = key.partition('/')
  return rest if head in _COLLECTIONS and rest else key


def _put_like(old, value):
  """``value`` with ``old``'s dtype, and ``old``'s sharding when ``old`` is a jax.Array."""
  value = np.asarray(value, dtype=old.dtype)
  if isinstance(old, jax.Array):
    return jax.make_array_from_callback(old.shape, old.sharding, lambda index: value[index])
  return value


def _replace_loaded(old_tree, new_tree, collection: str, loaded: set):
  """``old_tree`` (same treedef, leaf types and shardings) with the ``loaded`` leaves replaced."""
  flat_new = flax.traverse_util.flatten_dict(flax.core.unfreeze(new_tree), sep='/')

  def leaf(path, old):
    key = '/'.join(str(getattr(p, 'key', p)) for p in path)
    if f'{collection}/{key}' not in loaded:
      return old
    return _put_like(old, flat_new[key])

  return jax.tree_util.tree_map_with_path(leaf, old_tree)


class Method(abc.ABC):
  """Base class of method tenants (segmentation, padnet, adaptsegnet, ctkt)."""

  #: Keys of the batch dict the pipeline must provide (training and evaluation).
  batch_keys: Sequence[str] = ('image', 'label')

  def __init__(self, config, meta: dict, axis_name: str | None = None):
    self.config = config
    self.meta = meta
    self.axis_name = axis_name
    self.pretrained_report = None  # the LoadReport of the last load_pretrained

  #: Field of `config.dataset` naming a second training source (e.g. 'target' for domain
  #: adaptation), or None. When set, the loop builds it (split 'train') and every training batch
  #: is `{'source': <batch of config.dataset>, <field>: <batch of the second source>}`, each
  #: drawn by its own deterministic, resumable pipeline (transform: `second_train_transform`).
  second_train_source: str | None = None

  #: Single-network methods set `self.model` (a Flax module) and `self.tx = None` in __init__;
  #: multi-network methods override `init_state` and the steps.
  model = None
  tx = None

  @staticmethod
  def check_config(config) -> None:
    """The method's own config checks (`jaxseg/methods/<name>/checks.py`), called by
    `jaxseg.runner.config_checks.validate` after the common ones; raise ConfigError."""

  def init_state(self, rng, batch: dict) -> TrainState:
    """Initial state from a key and an example (host-local) batch; jit-able."""
    init_rng, state_rng = jax.random.split(rng)
    variables = self.init_variables(init_rng, jnp.asarray(batch['image'][:1]))
    params = variables['params']
    return TrainState.create(params, variables.get('batch_stats', {}), self._ensure_tx(params),
                             state_rng)

  def init_variables(self, rng, image):
    """Flax variables of `self.model` for a (1, H, W, 3) image."""
    return self.model.init(rng, image, train=False)

  def _ensure_tx(self, params):
    """The optax transformation for `params` (built once; steps may run before init_state)."""
    if self.tx is None:
      self.tx = optimizers.make_optimizer(self.config.optimizer, params,
                                          self.config.num_train_steps)
    return self.tx

  def apply_train(self, params, batch_stats, image, rng=None):
    """`self.model` in train mode -> (outputs, updated batch_stats).

    `rng` (e.g. `step_rng(state)`) becomes the Flax 'dropout' key; with `axis_name` it is
    folded with the device index so that each shard draws its own masks (under jit the one key
    draws the masks of the whole global batch). Models without dropout ignore it.
    """
    rngs = {}
    if rng is not None:
      if self.axis_name is not None:
        rng = jax.random.fold_in(rng, jax.lax.axis_index(self.axis_name))
      rngs = {'dropout': rng}
    outputs, new_vars = self.model.apply({'params': params, 'batch_stats': batch_stats}, image,
                                         train=True, mutable=['batch_stats'], rngs=rngs)
    return outputs, new_vars.get('batch_stats', batch_stats)

  def optimizer_step(self, state: TrainState, loss_fn) -> tuple[TrainState, dict]:
    """One update of `state.params` by `loss_fn(params) -> (total, (terms, batch_stats))`.

    `total` is this device's share of the global-batch loss (local sum / global count), so
    with `axis_name` the gradients, `total` and `terms` are psum'd. -> (new state, metrics
    {'loss', **terms, 'grad_norm'}).
    """
    tx = self._ensure_tx(state.params)
    (total, (terms, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    if self.axis_name is not None:
      grads = jax.lax.psum(grads, self.axis_name)
      total, terms = jax.lax.psum((total, terms), self.axis_name)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(step=state.step + 1,
                              params=optax.apply_updates(state.params, updates),
                              batch_stats=batch_stats, opt_state=opt_state)
    metrics = {'loss': total, **terms, 'grad_norm': optax.tree.norm(grads)}
    return self.skip_if_nonfinite(state, new_state, metrics)

  def skip_if_nonfinite(self, state: TrainState, new_state: TrainState,
                        metrics: dict) -> tuple[TrainState, dict]:
    """With `config.skip_nonfinite_steps`: `new_state` if every metric is finite, else `state`
    with only `step` advanced (the batch is skipped, as big_vision does), and metric
    `skipped` (1.0 / 0.0). Off (the default): `(new_state, metrics)` unchanged. Methods with
    their own update (several optimizers) call this on their result too.
    """
    if not self.config.get('skip_nonfinite_steps', False):
      return new_state, metrics
    ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(metrics)]))
    kept = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
    return kept.replace(step=new_state.step), {**metrics, 'skipped': 1.0 - ok.astype(jnp.float32)}

  @abc.abstractmethod
  def train_step(self, state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """One optimisation step -> (new state, scalar metrics averaged over the global batch)."""

  @abc.abstractmethod
  def eval_step(self, state: TrainState, batch: dict) -> Any:
    """Per-batch sums (a pytree) that add up over batches and devices; honours `batch['mask']`."""

  @abc.abstractmethod
  def summarize(self, sums) -> tuple[dict, str]:
    """Host-side: summed eval pytree -> (scalar metrics, human-readable report)."""

  @abc.abstractmethod
  def predict_step(self, state: TrainState, batch: dict) -> dict:
    """Predictions at input resolution (e.g. `label` (B, H, W), `depth` (B, H, W))."""

  @abc.abstractmethod
  def render(self, example: dict, prediction: dict, raw_image: np.ndarray) -> np.ndarray:
    """One side-by-side uint8 panel (input, targets, predictions) for an example."""

  # -- pretrained weights ---------------------------------------------------------------
  def pretrained_prefix(self, state: TrainState) -> str:
    """Flax module path in ``state.params`` the pretrained network goes under ('' = the root).

    ``'base'`` for the multi-scale-input wrapper (``config.model.msc``: ``MultiScaleInput``
    keeps the shared network under ``base/``), also detected as a params tree whose only
    top-level entry is ``base``. Multi-network methods override this (e.g. ``'generator'``).
    """
    model = self.config.get('model', None)
    params = state.params
    if (model is not None and model.get('msc', False)) or (
        isinstance(params, Mapping) and set(params) == {'base'}):
      return 'base'
    return ''

  def pretrained_keep_init(self, state: TrainState, layout) -> Sequence[str]:
    """Module paths in ``state.params`` (e.g. ``'discriminator'``) that keep their
    initialisation when ``init_from`` does not hold them. Multi-network methods override this."""
    return ()

  def initialize_from_config(self, state: TrainState) -> TrainState:
    """The initial state with the weights the config names (no checkpoint in the workdir):
    ``config.init_from`` via ``load_pretrained``; methods with more weight files extend it."""
    if self.config.get('init_from', ''):
      state = self.load_pretrained(state, self.config.init_from)
    return state

  def load_pretrained(self, state: TrainState, path) -> TrainState:
    """``state`` with ``params``/``batch_stats`` replaced by the weights in ``path``.

    ``path``: a torch ``.pth`` (read with ``config.init_layout``), a ``python -m jaxseg.convert``
    OUTDIR or its ``weights.npz``, or a ``.npz``/``.safetensors`` state dict. The weights go under
    ``pretrained_prefix(state)``. Arrays whose class count differs (e.g. a 21-class ASPP into a
    7-class model) keep their initialisation and are reported (console and absl log); for a
    backbone-only layout (``torchvision_resnet``) the heads keep their initialisation too. Any
    other missing, wrong-shape or unexpected key raises a ValueError listing them.

    The result has the same pytree structure, dtypes and shardings as ``state``; ``step``,
    ``rng`` and ``opt_state`` are kept (called before the first step, when optimizer buffers
    are zeros that do not depend on the parameter values). The report is kept in
    ``self.pretrained_report``.
    """
    name = os.fspath(path)
    layout = self.config.get('init_layout', None) or None
    source = convert.read_weights(name)  # read once: the prefix depends on its keys
    effective = 'plain' if is_flax_flat(source) else layout
    root = self.pretrained_prefix(state)
    if root and effective == 'plain' and all(
        _strip_collection(k).startswith(root + '/') for k in source):
      root = ''  # saved from a model that already had the wrapper
    default = convert.LAYOUTS[effective].default_prefix if effective in convert.LAYOUTS else ''
    allow_missing = []
    if layout in convert.LAYOUTS and layout != 'plain' and not convert.LAYOUTS[layout].heads:
      # Backbone-only weights (ImageNet ResNets): every module besides the backbone keeps its init.
      spec_root = convert.LAYOUTS[layout].default_prefix
      modules = state.params.get(root, {}) if root else state.params
      allow_missing = [join(root, m) for m in modules if m != spec_root]
    allow_missing += list(self.pretrained_keep_init(state, layout))
    variables = {'params': state.params, 'batch_stats': state.batch_stats}
    try:
      new, report = convert.load_into(variables, source, layout, prefix=join(root, default),
                                      allow_missing=allow_missing, name=name)
    except ValueError as e:
      raise ValueError(f'{e}\n(config.init_from={name!r}, config.init_layout={layout!r}; '
                       f'layouts: {sorted(convert.LAYOUTS)})') from e
    loaded = set(report.loaded)
    self.pretrained_report = report
    where = f', under {root}/' if root else ''
    text = f'init_from {name} (layout {layout}{where}): {report}'
    # One absl record (a warning when arrays were skipped) and the same text on the console.
    logging.log(logging.WARNING if report.skipped_num_classes else logging.INFO, '%s', text)
    if jax.process_index() == 0:
      print(text, flush=True)
    return state.replace(
        params=_replace_loaded(state.params, new['params'], 'params', loaded),
        batch_stats=_replace_loaded(state.batch_stats, new.get('batch_stats', {}),
                                    'batch_stats', loaded))

  def train_transform(self) -> Callable:
    return recipes.make_train_transform(self.config.dataset.augment, self.batch_keys)

  def second_train_transform(self) -> Callable:
    """Training transform of the `second_train_source` (its own `augment`, image only)."""
    cfg = self.config.dataset[self.second_train_source]
    return recipes.make_train_transform(cfg.augment, ('image',))

  #: True where `predict_step` returns a class map 'label' (B, H, W) for an 'image' batch alone,
  #: so `--config.predict.input=<folder or glob>` can run on the user's own images.
  predicts_label_maps = False

  def image_transform(self) -> Callable:
    """{'image': (H, W, 3) uint8 RGB} -> {'image': normalised float32}, as in evaluation."""
    return recipes.make_eval_transform(self.config.dataset.augment, ("image",))

  def eval_transform(self) -> Callable:
    return recipes.make_eval_transform(self.config.dataset.augment,
                                          tuple(self.batch_keys) + ())
