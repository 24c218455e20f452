"""Prepare once, reuse, never lose a prepared copy.

`prepare` writes `<prepared_dir>/<builder>/<config>/<version>/` (ArrayRecord + TFDS metadata +
`jaxseg_prepared.json`) from the publisher's layout in `data_dir`. It builds into a temporary
folder next to it and renames the finished folder into place, so an interrupted or failed
preparation (a missing or corrupt file raises `DatasetLayoutError`) leaves any earlier copy
untouched. Later calls reuse the copy when it holds the requested splits; a request for a
split it lacks prepares all of them again, then swaps the copies.

Killed mid-way (even `kill -9`), a preparation leaves only its `.incomplete-*` folder, which
no reader looks at: the next call starts over, and removes the folders of this host's
preparations whose process is gone.
"""
import dataclasses
import json
import os
import shutil
import socket
import time
import uuid

import tensorflow_datasets as tfds

from jaxseg.data.builders import base
from jaxseg.data.formats.common import DatasetLayoutError

DEFAULT_PREPARED_DIR = os.path.join('~', '.cache', 'jaxseg', 'tfds')
MARKER = 'jaxseg_prepared.json'


@dataclasses.dataclass
class Prepared:
  """A prepared dataset: its folder, TFDS names and the ids of each reader split."""
  path: str
  prepared_dir: str
  builder_cls: type
  config: base.Config
  splits: dict  # reader split -> list of example ids, in record order
  reused: bool

  def data_source(self, reader_split: str):
    """`tfds.data_source` of one reader split (random access, ArrayRecord)."""
    if reader_split not in self.splits:
      raise KeyError(f'split {reader_split!r} was not prepared in {self.path}; '
                     f'prepared: {sorted(self.splits)}')
    name = self.builder_cls.name
    kwargs = {}
    if self.config.name in self.builder_cls.builder_configs:
      name = f'{name}/{self.config.name}'
    else:
      kwargs['builder_kwargs'] = {'config': self.config}
    try:
      source = tfds.data_source(name, split=base.split_name(reader_split),
                                data_dir=self.prepared_dir, download=False, **kwargs)
    except Exception as e:  # pylint: disable=broad-except
      raise _damaged(self.path, f'cannot open split {reader_split!r}', e) from None
    return CheckedSource(source, self.path, reader_split)


def _damaged(path: str, what: str, error: Exception) -> DatasetLayoutError:
  return DatasetLayoutError(
      path, 'a folder written by jaxseg.data.builders.prepare (ArrayRecord shards, TFDS '
      'metadata, ' + MARKER + ')',
      f'damaged prepared copy: {what} ({type(error).__name__}: {str(error)[:200]}); delete the '
      f'folder to prepare it again from config.dataset.data_dir:')


class CheckedSource:
  """A prepared split's random-access source whose read errors name the prepared folder."""

  def __init__(self, source, path: str, split: str):
    self._source, self._path, self._split = source, path, split

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, i):
    try:
      return self._source[i]
    except IndexError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise _damaged(self._path, f'record {i} of split {self._split!r} is unreadable',
                     e) from None


def resolve_dir(prepared_dir: str | None) -> str:
  return os.path.abspath(os.path.expanduser(prepared_dir or DEFAULT_PREPARED_DIR))


def _read_marker(path: str) -> dict | None:
  try:
    with open(os.path.join(path, MARKER), encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _recover(final: str):
  """Puts back a copy left aside by a swap that was interrupted between its two renames."""
  parent, base_name = os.path.split(final)
  if os.path.exists(final) or not os.path.isdir(parent):
    return
  for name in sorted(os.listdir(parent)):
    old = os.path.join(parent, name)
    if name.startswith(base_name + '.old-') and _read_marker(old):
      os.rename(old, final)
      return


def _incomplete_prefix(builder_cls, config) -> str:
  return f'.incomplete-{builder_cls.name}-{config.name}-'


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _remove_abandoned(prepared_dir: str, prefix: str):
  """Removes `<prefix><host>-<pid>-*` folders of this host whose process no longer runs."""
  if not os.path.isdir(prepared_dir):
    return
  host = socket.gethostname()
  for name in os.listdir(prepared_dir):
    if not name.startswith(f'{prefix}{host}-'):
      continue
    pid = name[len(f'{prefix}{host}-'):].split('-')[0]
    if pid.isdigit() and not _pid_alive(int(pid)):
      shutil.rmtree(os.path.join(prepared_dir, name), ignore_errors=True)


def _check_data_dir(data_dir: str, field: str, layout: str, where: str):
  if not data_dir:
    raise ValueError(f'{field} is not set; point it at the dataset extracted as its publisher '
                     f'ships it (no prepared copy at {where} yet). Expected layout:\n{layout}')
  if not os.path.isdir(data_dir):
    raise DatasetLayoutError(data_dir, layout, f'{field} is not a directory')
  if not os.listdir(data_dir):
    raise DatasetLayoutError(data_dir, layout, f'{field} is an empty directory')


def _build(builder_cls, config, data_dir, tmp, splits, threads) -> tuple[str, dict]:
  """Prepares under the folder `tmp`; returns (the version folder, ids per reader split)."""
  builder = builder_cls(config=config, data_dir=tmp, file_format='array_record',
                        splits=splits, threads=threads)
  bars = getattr(tfds.core.utils.tqdm_utils, '_active', True)
  tfds.disable_progress_bar()  # one bar per split (with a total) instead of TFDS's three
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=data_dir))
  finally:
    if bars:
      tfds.enable_progress_bar()
  return os.fspath(builder.data_dir), builder.ids


def prepare(builder_cls, config: base.Config, data_dir: str, prepared_dir: str | None = None,
            splits=('train', 'val'), force: bool = False, threads: int | None = None,
            field: str = 'config.dataset.data_dir') -> Prepared:
  """Returns the prepared copy holding `splits` (reader split names), preparing if needed.

  `field` names the config field of `data_dir` in error messages.
  """
  prepared_dir = resolve_dir(prepared_dir)
  final = os.path.join(prepared_dir, builder_cls.name, config.name, str(builder_cls.VERSION))
  _recover(final)
  marker = _read_marker(final)
  have = dict(marker['splits']) if marker else {}
  if marker and not force and set(splits) <= set(have):
    if data_dir and os.path.abspath(data_dir) != marker.get('data_dir'):
      print(f'Note: reusing {final}, prepared from {marker.get("data_dir")} (not {data_dir}); '
            f'delete it to prepare again.', flush=True)
    return Prepared(final, prepared_dir, builder_cls, config, have, reused=True)
  layout = builder_cls.MANUAL_DOWNLOAD_INSTRUCTIONS
  _check_data_dir(data_dir, field, layout, final)
  data_dir = os.path.abspath(data_dir)
  want = sorted(set(splits) | set(have))
  print(f'Preparing {builder_cls.name}/{config.name} (splits {", ".join(want)}) from '
        f'{data_dir} into {final}; this happens once.', flush=True)
  os.makedirs(prepared_dir, exist_ok=True)
  prefix = _incomplete_prefix(builder_cls, config)
  _remove_abandoned(prepared_dir, prefix)
  tmp = os.path.join(prepared_dir, f'{prefix}{socket.gethostname()}-{os.getpid()}-'
                                   f'{uuid.uuid4().hex[:8]}')
  try:
    start = time.time()
    built, ids = _build(builder_cls, config, data_dir, tmp, want, threads)
    empty = sorted(split for split in want if not ids.get(split))
    if empty:
      raise DatasetLayoutError(data_dir, layout, f'split(s) {empty} have no examples in')
    with open(os.path.join(built, MARKER), 'w', encoding='utf-8') as f:
      json.dump({'builder': builder_cls.name, 'config': config.name,
                 'list_kwargs': config.list_kwargs, 'data_dir': data_dir, 'splits': ids,
                 'seconds': round(time.time() - start, 1)}, f)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    if os.path.exists(final):
      old = f'{final}.old-{uuid.uuid4().hex[:8]}'
      os.rename(final, old)
      os.rename(built, final)
      shutil.rmtree(old, ignore_errors=True)
    else:
      try:
        os.rename(built, final)
      except OSError:
        if not _read_marker(final):  # not another process that finished first
          raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  counts = ', '.join(f'{s}: {len(v)}' for s, v in ids.items())
  print(f'Prepared {builder_cls.name}/{config.name} ({counts} examples) in '
        f'{time.time() - start:.0f} s: {final}', flush=True)
  return Prepared(final, prepared_dir, builder_cls, config, ids, reused=False)
