"""Load converted weights: ``load_pretrained`` (file -> flat dict) and ``load_into`` (merge)."""
import collections
import dataclasses
import os
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import flax
import jax.numpy as jnp
import numpy as np

from jaxseg.convert.formats import read_weights
from jaxseg.convert.layouts import (COLLECTIONS, LAYOUTS, Flat, convert_flat, get_layout, join,
                                    unflatten)

Source = Union[str, os.PathLike, Mapping[str, np.ndarray]]
CLASSIFIERS = ('aspp', 'aspp_aux', 'fc', 'classifier')  # modules whose last axis is the class count


def add_prefix(flat: Mapping[str, np.ndarray], prefix: str) -> Flat:
  """'params/conv1/kernel' -> 'params/<prefix>/conv1/kernel'."""
  prefix = prefix.strip('/')
  out = collections.OrderedDict()
  for key, value in flat.items():
    collection, rest = key.split('/', 1)
    out[join(collection, prefix, rest)] = value
  return out


def is_flax_flat(state: Mapping[str, Any]) -> bool:
  """Whether keys are already '/'-joined Flax paths with a collection (converter output)."""
  return bool(state) and all(k.split('/', 1)[0] in COLLECTIONS and '/' in k for k in state)


def _load_flat(path: Source, layout: Optional[str], prefix: Optional[str], include_fc: bool,
               use_torch: Optional[bool]) -> Tuple[Flat, List[str]]:
  """(flat variables at the model root, torch keys the layout drops)."""
  name = 'state_dict' if isinstance(path, Mapping) else os.fspath(path)
  state = path if isinstance(path, Mapping) else read_weights(name, use_torch=use_torch)
  if is_flax_flat(state):
    layout = 'plain'  # already converted: the torch layout no longer applies
  if layout is None:
    raise ValueError(f'{name}: a layout is needed for torch-style keys; expected one of '
                     f'{sorted(LAYOUTS)}')
  flat, dropped = convert_flat(state, layout, include_fc=include_fc)
  prefix = get_layout(layout).default_prefix if prefix is None else prefix
  return add_prefix(flat, prefix), dropped


def load_pretrained(path: Source, layout: Optional[str] = None, prefix: Optional[str] = None,
                    include_fc: bool = False, use_torch: Optional[bool] = None) -> Flat:
  """Flat ``{'params/...': array, 'batch_stats/...': array}`` at the model root.

  ``path``: a torch file (``.pth``/``.pt``/``.bin``), ``.npz``, ``.safetensors``, a converter
  OUTDIR (holding ``weights.npz``), or an in-memory state_dict. Files whose keys are already Flax
  paths (``params/...``, ``batch_stats/...``: converter output) are taken as layout ``plain`` whatever
  ``layout`` says, so ``config.init_from`` may name OUTDIR or the ``.pth`` with the same layout.
  ``prefix=None`` applies the layout's default (``backbone`` for ``torchvision_resnet``, none
  otherwise; none for ``plain``).
  """
  return _load_flat(path, layout, prefix, include_fc, use_torch)[0]


@dataclasses.dataclass
class LoadReport:
  """What ``load_into`` did, key by key ('/'-joined paths with collection)."""
  loaded: List[str] = dataclasses.field(default_factory=list)
  skipped_num_classes: List[Tuple[str, tuple, tuple]] = dataclasses.field(default_factory=list)
  kept_init: List[str] = dataclasses.field(default_factory=list)  # allowed missing
  ignored: List[str] = dataclasses.field(default_factory=list)    # file keys dropped on request
  dropped: List[str] = dataclasses.field(default_factory=list)    # torch keys the layout drops

  def __str__(self) -> str:
    lines = [f'loaded {len(self.loaded)} arrays']
    for key, got, want in self.skipped_num_classes:
      lines.append(f'  skipped (class count differs): {key} file {got} model {want}')
    if self.kept_init:
      lines.append(f'  kept initialisation (not in file, allowed): {len(self.kept_init)} arrays '
                   f'under {sorted({k.split("/")[1] for k in self.kept_init})}')
    if self.ignored:
      lines.append(f'  ignored file keys: {self.ignored}')
    if self.dropped:
      tracked = [k for k in self.dropped if k.endswith('num_batches_tracked')]
      other = [k for k in self.dropped if k not in tracked]
      lines.append(f'  dropped by the layout: {len(tracked)} num_batches_tracked'
                   + (f', {other}' if other else ''))
    return '\n'.join(lines)


def _under(key: str, prefixes: Sequence[str]) -> bool:
  """Whether 'collection/a/b/...' lies under one of the Flax module paths ``prefixes``."""
  rest = key.split('/', 1)[1]
  return any(rest == p.strip('/') or rest.startswith(p.strip('/') + '/') for p in prefixes)


def _class_count_only(key: str, got: tuple, want: tuple, classifiers: Sequence[str]) -> bool:
  in_head = any(part in classifiers for part in key.split('/')[1:-1])
  return (in_head and len(got) == len(want) and got[:-1] == want[:-1] and got[-1] != want[-1])


def load_into(variables: Mapping[str, Any], source: Source, layout: Optional[str] = None,
              prefix: Optional[str] = None, allow_missing: Sequence[str] = (),
              ignore: Sequence[str] = (), classifiers: Sequence[str] = CLASSIFIERS,
              include_fc: bool = False, use_torch: Optional[bool] = None,
              name: Optional[str] = None) -> Tuple[dict, LoadReport]:
  """Merge converted weights into freshly initialised ``variables``; returns (variables, report).

  Arrays whose shape differs only in the class count (last axis of a ``classifiers`` module, e.g. a
  21-class ASPP into a 19-class model) keep their initialisation and are reported. Model arrays
  missing from the file (unless under an ``allow_missing`` module path such as ``'aspp_aux'``),
  arrays of any other wrong shape, and file arrays the model lacks (unless under ``ignore``) raise
  one ValueError listing them all. Loaded arrays take the dtype of the initialised ones.
  ``name`` names the source in that error (default: the path, or 'state_dict' for a mapping).
  """
  flat_file, dropped = _load_flat(source, layout, prefix, include_fc, use_torch)
  variables = flax.core.unfreeze(variables)
  model = {c: flax.traverse_util.flatten_dict(variables[c], sep='/')
           for c in COLLECTIONS if c in variables}
  flat_model = {join(c, k): v for c, tree in model.items() for k, v in tree.items()}
  report, missing, wrong, unexpected = LoadReport(dropped=dropped), [], [], []
  new = dict(flat_model)
  for key, init in flat_model.items():
    if key not in flat_file:
      (report.kept_init if _under(key, allow_missing) else missing).append(key)
      continue
    got, want = tuple(flat_file[key].shape), tuple(np.shape(init))
    if got == want:
      new[key] = jnp.asarray(flat_file[key], dtype=init.dtype)
      report.loaded.append(key)
    elif _class_count_only(key, got, want, classifiers):
      report.skipped_num_classes.append((key, got, want))
    else:
      wrong.append(f'{key}: file {got} model {want}')
  for key in flat_file:
    if key not in flat_model:
      (report.ignored if _under(key, ignore) else unexpected).append(key)
  if missing or wrong or unexpected:
    if name is None:
      name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else 'state_dict'
    parts = [f'cannot load {name} (layout {layout}) into the model:']
    if missing:
      parts.append(f'missing from the file ({len(missing)}): {missing}')
    if wrong:
      parts.append(f'wrong shape ({len(wrong)}): {wrong}')
    if unexpected:
      parts.append(f'not in the model ({len(unexpected)}): {unexpected}')
    if missing and unexpected:
      parts.append(f'(both missing and unexpected keys: check prefix={prefix!r} and the layout)')
    raise ValueError('\n'.join(parts))
  for c in model:
    tree = unflatten({k.split('/', 1)[1]: v for k, v in new.items() if k.split('/', 1)[0] == c})
    variables[c] = tree
  return variables, report
