"""Dataset registry: config.dataset.name -> a random-access source of NumPy examples.

A source has `__len__`, `__getitem__(i) -> dict` (HWC uint8 `image`, HW `label`, ...) and a
`meta` dict (`class_names`, `palette`, `num_classes`, `ignore_label`). Real datasets are
added here by the datasets issue; the embedded synthetic scenes are the default everywhere.
"""
from typing import Callable

_VAL_SEED_OFFSET = 1_000_003


def _synthetic(cfg, split: str):
  from jaxseg.data import synthetic  # pylint: disable=g-import-not-at-top
  seed = cfg.seed + (0 if split == 'train' else _VAL_SEED_OFFSET)
  num = cfg.num_train if split == 'train' else cfg.num_val
  return synthetic.SyntheticScenes(seed=seed, num_examples=num, height=cfg.image_size[0],
                                   width=cfg.image_size[1], domain=cfg.get('domain', 'source'))


SOURCES: dict[str, Callable] = {'synthetic': _synthetic}


def make_source(dataset_cfg, split: str):
  """Builds the `split` ('train' | 'val') source named by `dataset_cfg.name`."""
  if dataset_cfg.name not in SOURCES:
    raise ValueError(f'config.dataset.name={dataset_cfg.name!r} is not a known dataset; '
                     f'known: {sorted(SOURCES)}')
  return SOURCES[dataset_cfg.name](dataset_cfg, split)
