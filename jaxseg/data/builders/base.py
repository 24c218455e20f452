"""The TFDS builder shared by every dataset: a `formats/` reader in, ArrayRecord out.

A dataset builder names its reader module (`FORMAT`), its record fields and, per builder
config, the reader's `list_examples` options. Examples are written in listing order
(`disable_shuffling`), so record i of a split is the reader's i-th entry. Reading runs in a
small thread pool (Pillow and zlib release the GIL) with a progress bar per split. Any
`DatasetLayoutError` raised by the reader stops preparation unchanged.
"""
import collections
import concurrent.futures
import dataclasses
import os
import re
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from jaxseg.data import validate
from jaxseg.data.builders import codecs


@dataclasses.dataclass(eq=False)
class Config(tfds.core.BuilderConfig):
  """A builder config with the reader's `list_examples` keyword arguments."""
  list_kwargs: dict = dataclasses.field(default_factory=dict)


def split_name(reader_split: str) -> str:
  """A TFDS-safe split name for a reader split (non-word characters -> '_'; TFDS reserves
  'all', which becomes 'all_examples')."""
  name = re.sub(r'\W', '_', reader_split)
  return 'all_examples' if name.lower() == 'all' else name


def ordered_map(fn: Callable, items: Iterable, threads: int) -> Iterator:
  """`map(fn, items)` on `threads` threads, in order, at most 2 * threads items ahead."""
  if threads <= 1:
    yield from map(fn, items)
    return
  items = iter(items)
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    pending = collections.deque(pool.submit(fn, x) for _, x in zip(range(2 * threads), items))
    try:
      while pending:
        result = pending.popleft().result()
        for x in items:
          pending.append(pool.submit(fn, x))
          break
        yield result
    finally:
      for f in pending:
        f.cancel()


def stored_num_classes(fmt) -> int | None:
  """The most classes a format's labels can hold (its longest CLASS_NAMES* list), or None."""
  lists = [v for k, v in vars(fmt).items() if k.startswith('CLASS_NAMES') and isinstance(v, tuple)]
  lists += [v for v in getattr(fmt, 'CLASS_NAMES_BY_PROTOCOL', {}).values()]
  return max((len(v) for v in lists), default=0) or None


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the jaxseg builders; see the module docstring."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First jaxseg release.'}
  FORMAT: Any = None          # the jaxseg.data.formats module that reads the dataset
  IMAGE_PATH_KEY = 'image'    # entry key of the image file whose bytes are stored as is

  def __init__(self, *, splits: Iterable[str] = (), threads: int | None = None, **kwargs):
    self._reader_splits = tuple(splits)
    self._threads = threads or min(8, os.cpu_count() or 1)
    self.ids = {}  # reader split -> example ids in record order, filled while preparing
    super().__init__(**kwargs)

  # -- per dataset ------------------------------------------------------------------------
  def fields(self) -> dict:
    """Record fields (besides 'id') -> TFDS feature; see `codecs`."""
    raise NotImplementedError

  def encode(self, entry: dict, example: dict) -> dict:
    """Reader output -> record (fields of `fields()`); the image keeps its file's bytes."""
    rec = {}
    for key, feature in self.fields().items():
      if key == 'image':
        path = entry.get(self.IMAGE_PATH_KEY)
        rec[key] = codecs.encode_image(example[key], path if isinstance(path, str) else None)
      else:
        rec[key] = np.asarray(example[key]).astype(feature.np_dtype)
    return rec

  @classmethod
  def decode(cls, record: dict, **options) -> dict:
    """Record -> the reader's example (NumPy arrays); `options` are dataset-specific."""
    del options
    return {k: codecs.decode_image(v) if k == 'image' else np.asarray(v)
            for k, v in record.items() if k != 'id'}

  # -- TFDS -------------------------------------------------------------------------------
  def _log_download_bytes(self):  # `prepare` prints where the data really goes
    pass

  def _log_download_done(self):
    pass

  def _info(self) -> tfds.core.DatasetInfo:
    features = tfds.features.FeaturesDict({'id': tfds.features.Text(), **self.fields()})
    return tfds.core.DatasetInfo(builder=self, description=self.__doc__, features=features,
                                 disable_shuffling=True)

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    return {split_name(s): self._generate_examples(root, s) for s in self._reader_splits}

  def _read(self, entry: dict) -> dict:
    example = self.FORMAT.read_example(entry)
    where = entry.get(self.IMAGE_PATH_KEY)
    validate.check_example(example, where if isinstance(where, str) else str(entry['id']),
                           stored_num_classes(self.FORMAT),
                           getattr(self.FORMAT, 'EXPECTED_LAYOUT', ''))
    rec = self.encode(entry, example)
    rec['id'] = str(entry['id'])
    return rec

  def _generate_examples(self, root: str, split: str):
    entries = self.FORMAT.list_examples(root, split, **self.builder_config.list_kwargs)
    desc = f'{self.name}/{self.builder_config.name} {split}'
    self.ids[split] = [str(e['id']) for e in entries]
    records = ordered_map(self._read, entries, self._threads)
    for i, rec in enumerate(tqdm.tqdm(records, total=len(entries), desc=desc, unit='ex',
                                      mininterval=1.0)):
      yield i, rec
