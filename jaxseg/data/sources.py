"""Dataset registry: config.dataset.name -> a random-access source of NumPy examples.

A source has `__len__`, `__getitem__(i) -> dict` (HWC uint8 `image`, HW `label`, ...) and a
`meta` dict (`class_names`, `palette`, `num_classes`, ignore_label`). The embedded synthetic
scenes are the default everywhere. Every other name is a dataset in its publisher's layout
under `config.dataset.data_dir`, prepared once (`jaxseg.data.builders`) into
`config.dataset.prepared_dir` (default ~/.cache/jaxseg/tfds) and read back with
`tfds.data_source`. See jaxseg/data/README.md for the fields of each dataset.
"""
import dataclasses
import functools
from typing import Callable

import ml_collections
import numpy as np

from jaxseg import viz
from jaxseg.data import formats, synthetic
from jaxseg.data.formats import cityscapes, synthia

_VAL_SEED_OFFSET = 1_000_003
SPLITS = ('train', 'val')


def _synthetic(cfg, split: str):
  seed = cfg.seed + (0 if split == 'train' else _VAL_SEED_OFFSET)
  num = cfg.num_train if split == 'train' else cfg.num_val
  return synthetic.SyntheticScenes(seed=seed, num_examples=num, height=cfg.image_size[0],
                                   width=cfg.image_size[1], domain=cfg.get('domain', 'source'))


class PreparedSource:
  """One split of a prepared dataset, decoded to the reader's NumPy arrays."""

  def __init__(self, data_source, decode: Callable, meta: dict, ids, indices=None):
    self._ds, self._decode, self.meta = data_source, decode, meta
    self._indices = np.arange(len(data_source)) if indices is None else np.asarray(indices)
    self._ids = ids

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, i: int) -> dict:
    return self._decode(self._ds[int(self._indices[i])])

  def example_id(self, i: int) -> str:
    """The publisher's id of example i (e.g. 'frankfurt_000000_000294')."""
    return self._ids[int(self._indices[i])]


@dataclasses.dataclass(frozen=True)
class RealDataset:
  """How a config.dataset maps onto a builder: config, splits, decode options, meta."""
  builder: str                                   # key of jaxseg.data.builders.BUILDERS
  splits: dict                                   # 'train' / 'val' -> reader split or None
  meta: Callable                                 # dataset cfg -> meta dict
  config: Callable = lambda cfg: 'default'       # dataset cfg -> builder config (or its name)
  decode_options: Callable = lambda cfg: {}      # dataset cfg -> Builder.decode kwargs
  why_no_split: str = ''
  holdout: tuple = ()                            # default config.dataset.holdout


def _choice(cfg, field: str, default, allowed):
  value = cfg.get(field, default)
  if value not in allowed:
    raise ValueError(f'config.dataset.{field}={value!r}: must be one of {list(allowed)} for '
                     f'config.dataset.name={cfg.name!r}')
  return value


def _meta(name, class_names=(), palette=None):
  n = len(class_names)
  palette = viz.generic_palette(n) if palette is None and n else palette
  return {'name': name, 'class_names': tuple(class_names), 'num_classes': n,
          'palette': np.zeros((0, 3), np.uint8) if palette is None else np.asarray(palette),
          'ignore_label': 255}


def _city_classes(cfg, default=19):
  n = _choice(cfg, 'num_classes', default, (19, 16, 13))
  return n, (cityscapes.CLASS_NAMES if n == 19 else synthia.CLASS_NAMES_BY_PROTOCOL[n]), (
      synthia.PALETTES[n])


def _formats(name):
  return formats.DATASETS[name]


def _tofmark_config(cfg):
  # builders import tensorflow_datasets (heavy; only real datasets need it)
  from jaxseg.data.builders import tofmark  # pylint: disable=g-import-not-at-top
  files = cfg.get('files', None)
  return tofmark.config_for(cfg.get('reader', 'png16_mm'), dict(files) if files else None)


_DEPTH_ONLY = 'it is a depth super-resolution set'
REAL = {
    'cityscapes': RealDataset(
        'cityscapes', {'train': 'train', 'val': 'val'},
        meta=lambda c: _meta('cityscapes', *_city_classes(c)[1:]),
        config=lambda c: 'fine_depth' if c.get('depth', False) else 'fine',
        decode_options=lambda c: {'num_classes': _city_classes(c)[0]}),
    'gta5': RealDataset(
        'gta5', {'train': 'all', 'val': None},
        meta=lambda c: _meta('gta5', _formats('gta5').CLASS_NAMES, _formats('gta5').PALETTE),
        why_no_split='GTA5 is a training (source-domain) set; evaluate on Cityscapes with '
                     'config.dataset.val_dataset'),
    'synthia': RealDataset(
        'synthia', {'train': 'all', 'val': None},
        meta=lambda c: _meta('synthia', *_city_classes(c, 16)[1:]),
        decode_options=lambda c: {'num_classes': _city_classes(c, 16)[0]},
        why_no_split='SYNTHIA is a training (source-domain) set; evaluate on Cityscapes with '
                     'config.dataset.val_dataset'),
    'nyuv2': RealDataset(
        'nyuv2', {'train': 'train', 'val': 'test'},
        meta=lambda c: _meta('nyuv2', getattr(_formats('nyuv2'), 'CLASS_NAMES_%d' % _choice(
            c, 'num_classes', 40, (40, 13)))),
        config=lambda c: str(_choice(c, 'num_classes', 40, (40, 13)))),
    'nyuv2_dsr': RealDataset(
        'nyuv2', {'train': 'dsr_train', 'val': 'dsr_test'},
        meta=lambda c: _meta('nyuv2_dsr'), config=lambda c: 'depth'),
    'voc': RealDataset(
        'voc', {'train': 'train_aug', 'val': 'val'},
        meta=lambda c: _meta('voc', _formats('voc').CLASS_NAMES, _formats('voc').PALETTE)),
    'ade20k': RealDataset(
        'ade20k', {'train': 'training', 'val': 'validation'},
        meta=lambda c: _meta('ade20k', _formats('ade20k').CLASS_NAMES)),
    'middlebury': RealDataset(
        'middlebury', {'train': 'FullSize', 'val': 'FullSize'}, meta=lambda c: _meta('middlebury'),
        holdout=('Art', 'Books', 'Dolls', 'Laundry', 'Moebius', 'Reindeer')),
    'sintel': RealDataset(
        'sintel', {'train': 'training', 'val': None}, meta=lambda c: _meta('sintel'),
        config=lambda c: _choice(c, 'image_pass', 'clean', ('clean', 'final')),
        why_no_split='Sintel ships depth for its training frames only; hold scenes out with '
                     'config.dataset.holdout'),
    'tofmark': RealDataset(
        'tofmark', {'train': None, 'val': 'test'}, meta=lambda c: _meta('tofmark'),
        config=_tofmark_config, why_no_split='ToFMark is a test set (3 scenes)'),
}


def _override(cfg, split: str):
  return (cfg.get('splits', None) or {}).get(split)


def _reader_split(name: str, spec: RealDataset, cfg, split: str, holdout) -> str:
  reader = _override(cfg, split) or spec.splits.get(split)
  if reader is None and holdout and split == 'val':  # the held-out part of the training split
    reader = _reader_split(name, spec, cfg, 'train', ())
  if reader is None:
    raise ValueError(f'config.dataset.name={name!r} has no {split!r} split ({spec.why_no_split}'
                     f'); or name a reader split in config.dataset.splits.{split}')
  return reader


def _holdout_indices(ids, holdout, split: str):
  """Examples whose id starts with a held-out name go to 'val', the others to 'train'."""
  held = np.array([any(i == h or i.startswith(h + '/') for h in holdout) for i in ids], bool)
  return np.flatnonzero(held if split == 'val' else ~held)


def _real(name: str, cfg, split: str):
  # builders import tensorflow_datasets (heavy; only real datasets need it)
  from jaxseg.data import builders  # pylint: disable=g-import-not-at-top
  spec = REAL[name]
  builder_cls = builders.BUILDERS[spec.builder]
  config = spec.config(cfg)
  if isinstance(config, str):
    config = builder_cls.builder_configs[config]
  holdout = tuple(cfg.get('holdout', spec.holdout) or ())
  readers = {s: _reader_split(name, spec, cfg, s, holdout) for s in SPLITS
             if s == split or spec.splits.get(s) or _override(cfg, s) or (holdout and s == 'val')}
  meta, options = spec.meta(cfg), spec.decode_options(cfg)  # check options before preparing
  prepared = builders.prepare(builder_cls, config, cfg.get('data_dir', ''),
                              cfg.get('prepared_dir', ''), splits=sorted(set(readers.values())),
                              threads=cfg.get('prepare_threads', 0) or None)
  reader = readers[split]
  ids = prepared.splits[reader]
  indices = None
  if holdout and readers.get('train') == readers.get('val'):
    indices = _holdout_indices(ids, holdout, split)
    if not len(indices):
      raise ValueError(f'config.dataset.holdout={holdout!r} leaves no {split!r} examples in '
                       f'{reader!r} of {prepared.path}')
  decode = functools.partial(builder_cls.decode, **options)
  return PreparedSource(prepared.data_source(reader), decode, meta, ids, indices)


class ConcatSource:
  """Chosen examples of several sources as one: `parts` [(source, indices)], in that order."""

  def __init__(self, parts, meta: dict):
    self._items = [(src, int(i)) for src, idx in parts for i in idx]
    self.meta = meta

  def __len__(self) -> int:
    return len(self._items)

  def __getitem__(self, i: int) -> dict:
    src, j = self._items[int(i)]
    return src[j]

  def example_id(self, i: int) -> str:
    src, j = self._items[int(i)]
    return src.example_id(j) if hasattr(src, 'example_id') else str(j)


#: MSG-Net's mixed depth-SR training set (ctkt_dsr.md §8.2, the CTKT group's): 58 Sintel + 34
#: Middlebury images, 82 train / 10 val; the val frames are 1-based indices into the mixture.
MIXED_VAL_FRAMES = (1, 20, 28, 58, 64, 66, 69, 73, 75, 79)
MIDDLEBURY_TEST = ('Art', 'Books', 'Dolls', 'Laundry', 'Moebius', 'Reindeer')


def _sintel_middlebury(cfg, split: str):
  """The mixed set: Sintel frames first, then Middlebury scenes (the order MSG-Net's indices
  refer to is not published [D]); `num_sintel` frames evenly spaced over the sorted Sintel
  training frames and the first `num_middlebury` FullSize scenes by name, never the
  Middlebury test scenes [D: MSG-Net's exact picks are not published]. Fields: sintel_dir,
  middlebury_dir, prepared_dir, image_pass, num_sintel (58), num_middlebury (34), val_frames."""
  common = dict(prepared_dir=cfg.get('prepared_dir', ''), holdout=())
  sintel = _real('sintel', ml_collections.ConfigDict(dict(
      common, name='sintel', data_dir=cfg.get('sintel_dir', ''),
      image_pass=cfg.get('image_pass', 'clean'))), 'train')
  mb = _real('middlebury', ml_collections.ConfigDict(dict(
      common, name='middlebury', data_dir=cfg.get('middlebury_dir', ''))), 'train')
  n_s, n_m = int(cfg.get('num_sintel', 58)), int(cfg.get('num_middlebury', 34))
  s_ids = sorted(range(len(sintel)), key=sintel.example_id)
  if len(s_ids) < n_s:
    raise ValueError(f'config.dataset.num_sintel={n_s}: {cfg.get("sintel_dir")} has only '
                     f'{len(s_ids)} Sintel frames with depth')
  s_pick = [s_ids[i] for i in np.linspace(0, len(s_ids) - 1, n_s).round().astype(int)]
  m_ids = sorted((i for i in range(len(mb))
                  if mb.example_id(i).split('/')[0] not in MIDDLEBURY_TEST), key=mb.example_id)
  if len(m_ids) < n_m:
    raise ValueError(f'config.dataset.num_middlebury={n_m}: {cfg.get("middlebury_dir")} has only '
                     f'{len(m_ids)} Middlebury training scenes (test scenes {MIDDLEBURY_TEST} '
                     f'excluded)')
  mixed = [(sintel, i) for i in s_pick] + [(mb, i) for i in m_ids[:n_m]]
  val = {int(v) - 1 for v in cfg.get('val_frames', MIXED_VAL_FRAMES)}
  if not val <= set(range(len(mixed))):
    raise ValueError(f'config.dataset.val_frames={tuple(sorted(v + 1 for v in val))}: 1-based '
                     f'indices into the {len(mixed)} mixed images')
  keep = [m for i, m in enumerate(mixed) if (i in val) == (split == 'val')]
  return ConcatSource([(src, [j]) for src, j in keep], _meta('sintel_middlebury'))


SOURCES: dict[str, Callable] = {'synthetic': _synthetic, 'sintel_middlebury': _sintel_middlebury}
SOURCES.update({n: functools.partial(_real, n) for n in REAL})


def make_source(dataset_cfg, split: str):
  """Builds the `split` ('train' | 'val') source named by `dataset_cfg.name`; 'val' comes from
  `dataset_cfg.val_dataset` when that is set (any dataset, e.g. GTA5 -> Cityscapes val)."""
  if dataset_cfg.name not in SOURCES:
    raise ValueError(f'config.dataset.name={dataset_cfg.name!r} is not a known dataset; '
                     f'known: {sorted(SOURCES)}')
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  val = dataset_cfg.get('val_dataset', None)
  if split == 'val' and val:  # evaluate on another dataset (e.g. the target domain)
    return make_source(val, 'val')
  return SOURCES[dataset_cfg.name](dataset_cfg, split)
