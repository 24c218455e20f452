"""Stopping and resuming safely: preemption signals, the resumed config, non-finite steps.

  install_signal_handlers()      SIGTERM / SIGINT / SIGUSR1 -> stop after the current step
  raise_if_requested(step)       called by the loop after each step; raises `Preempted`
  check_resume_config(c, wd)     a workdir whose checkpoints came from another config -> error
  check_field_paths(c, paths)    `--config.<path>` overrides that name no field -> error
  nonfinite_steps(pending, ...)  the steps whose metrics hold a NaN / Inf

TPU VMs get SIGTERM before preemption and SLURM sends the signal chosen with `--signal`: the
first signal asks the loop to finish the step in flight, save a checkpoint of it and exit; a
second one interrupts at once (the last periodic checkpoint is kept).
"""
import difflib
import json
import os
import signal

import numpy as np

from jaxseg.configlib import ConfigError

CONFIG_FILE = 'config.json'
#: Fields that do not change what a train step computes: they may differ on resume.
RESUME_FREE_FIELDS = ('log_every_steps', 'eval_every_steps', 'checkpoint_every_steps',
                      'keep_checkpoints', 'data_threads', 'num_eval_examples', 'eval_batch_size',
                      'predict', 'init_from', 'init_layout', 'dataset.data_dir',
                      'dataset.prepared_dir', 'dataset.prepare_threads', 'eval', 'evaluation')
_SIGNALS = ('SIGTERM', 'SIGINT', 'SIGUSR1')
_requested = []  # the signal names received, in order


class Preempted(KeyboardInterrupt):
  """A stop signal arrived; the loop saves a checkpoint of the current step and exits."""

  def __init__(self, signal_name: str, step: int):
    self.signal_name, self.step = signal_name, step
    super().__init__(f'{signal_name} after step {step}')


def _handler(signum, frame):
  del frame
  name = signal.Signals(signum).name
  if _requested:
    raise KeyboardInterrupt(f'second stop signal ({name})')
  _requested.append(name)
  print(f'received {name}: stopping after the current step and saving a checkpoint '
        f'(send it again to stop at once)', flush=True)


def install_signal_handlers():
  """Makes the stop signals request a checkpoint-and-exit (main thread only)."""
  _requested.clear()
  for name in _SIGNALS:
    signal.signal(getattr(signal, name), _handler)


def requested() -> str | None:
  return _requested[0] if _requested else None


def raise_if_requested(step: int):
  if _requested:
    raise Preempted(_requested[0], step)


# -- the config of a resumed run ------------------------------------------------------------
def _flatten(tree, prefix=''):
  out = {}
  for key, value in tree.items():
    path = f'{prefix}{key}'
    if isinstance(value, dict) and value:
      out.update(_flatten(value, path + '.'))
    else:
      out[path] = value
  return out


def _free(path: str) -> bool:
  return any(path == f or path.startswith(f + '.') for f in RESUME_FREE_FIELDS)


def _has_checkpoint(workdir: str) -> bool:
  ckpt = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(ckpt) and any(n.isdigit() for n in os.listdir(ckpt))


def config_differences(saved: dict, current: dict) -> list[str]:
  """`field: saved -> current` for every field that differs (RESUME_FREE_FIELDS aside)."""
  a, b = _flatten(saved), _flatten(current)
  out = []
  first = ('method', 'model.name', 'dataset.name')  # what a run is, before its details
  for path in sorted(set(a) | set(b), key=lambda p: (p not in first, p)):
    if _free(path):
      continue
    if path not in a:
      out.append(f'config.{path}: not in the saved config -> {b[path]!r}')
    elif path not in b:
      out.append(f'config.{path}: {a[path]!r} -> not in this config')
    elif a[path] != b[path]:
      out.append(f'config.{path}: {a[path]!r} -> {b[path]!r}')
  return out


def check_resume_config(config, workdir: str):
  """Raises ConfigError when `workdir` holds checkpoints written under a different config.

  Compares with `<workdir>/config.json` (written by every training run) and names each
  differing field with both values. Fields that only change logging, checkpoint cadence,
  evaluation or data paths (RESUME_FREE_FIELDS) may differ.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not _has_checkpoint(workdir) or not os.path.exists(path):
    return
  try:
    with open(path, encoding='utf-8') as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    raise ConfigError(f'{path} is unreadable ({e}); it records the config of the checkpoints '
                      f'in {workdir}. Use a new --workdir, or delete it to resume anyway') from None
  current = json.loads(config.to_json_best_effort())
  diffs = config_differences(saved, current)
  if diffs:
    shown = '\n  '.join(diffs[:20]) + (f'\n  ... ({len(diffs) - 20} more)' if len(diffs) > 20
                                       else '')
    raise ConfigError(
        f'{os.path.abspath(workdir)} holds checkpoints of a different config ({path}); '
        f'differing fields (saved -> now):\n  {shown}\nUse a new --workdir, or the same config '
        f'to resume (to resume with these changes anyway, move {CONFIG_FILE} away).')


def check_field_paths(config, paths) -> None:
  """Raises ConfigError for the first dotted path (a `--config.<path>` override) that names no
  field of `config`, with the nearest existing field names."""
  for path in paths:
    node = config
    for part in path.split('.'):
      if not hasattr(node, 'keys') or part not in node:
        raise ConfigError(unknown_field_message(config, path))
      node = node[part]


def unknown_field_message(config, path: str) -> str:
  """`config.<path>` does not exist: the message with the nearest existing field names."""
  fields = sorted(_flatten(json.loads(config.to_json_best_effort())))
  parent = path.rpartition('.')[0]
  near = difflib.get_close_matches(path, fields, n=5, cutoff=0.5)
  siblings = [f for f in fields if f.rpartition('.')[0] == parent]
  near += [f for f in difflib.get_close_matches(path, siblings, n=3, cutoff=0.0) if f not in near]
  return (f'config.{path}: no such field in the config; nearest: '
          f'{", ".join("config." + f for f in near[:5]) or "none"}')


# -- non-finite metrics ---------------------------------------------------------------------
def nonfinite_terms(metrics: dict) -> list[str]:
  """Names of the (host) metrics that hold a NaN or an Inf."""
  return [name for name, value in metrics.items()
          if not np.all(np.isfinite(np.asarray(value, dtype=np.float64)))]


def describe(metrics: dict) -> str:
  return ', '.join(f'{n} {float(np.mean(v)):.6g}' for n, v in metrics.items())
