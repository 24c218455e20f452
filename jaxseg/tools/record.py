"""Trains + evaluates one config through the one loop and records the outcome as a results file.

  python -m jaxseg.tools.record --config=configs/pspnet.py:smoke --name=pspnet/full/seed0 \
      --workdir=/tmp/pspnet_full_s0 [--config.seed=0 --config.num_train_steps=300 ...] \
      [--columns=miou,pixel_accuracy]

writes `docs/results/<name>.json`: the name (`<group>/<row>[/seed<k>]`), the command line, the
config spec and its `--config.*` overrides, the commit, steps, wall time, the machine (CPU
model, cores, load average before and after, jax version, devices) and the final evaluation's
scalar metrics. `python -m jaxseg.tools.results_table` turns every such file into
docs/results.md. A workdir that already holds a finished run is resumed (and finishes at once).
"""
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import jax
from absl import app, flags
from ml_collections import config_flags

from jaxseg.config_files import REPO_ROOT
from jaxseg.runner import loop



def define_flags():
  """The command's flags (defined only when it runs: tests import this module beside
  jaxseg.main, whose --config/--workdir would clash)."""
  global _CONFIG, _NAME, _WORKDIR, _COLUMNS, _OUT  # pylint: disable=global-statement
  _CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path[:arg]).',
                                            lock_config=True)
  _NAME = flags.DEFINE_string('name', None, '<group>/<row>[/seed<k>]: the results file name.')
  _WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (checkpoints, logs).')
  _COLUMNS = flags.DEFINE_list('columns', [], 'Metrics shown in docs/results.md (default: all '
                               'scalars without a "/").')
  _OUT = flags.DEFINE_string('out_dir', os.path.join(REPO_ROOT, 'docs', 'results'),
                             'Where results files go.')
  flags.mark_flags_as_required(['config', 'name', 'workdir'])


def _git(*args) -> str:
  try:
    return subprocess.run(['git', *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return ''


def commit_id() -> str:
  """HEAD's short id, with '+dirty' when jaxseg/ or configs/ differ from it."""
  head = _git('rev-parse', '--short', 'HEAD') or 'unknown'
  dirty = _git('status', '--porcelain', '--', 'jaxseg', 'configs')
  return head + ('+dirty' if dirty else '')


def machine() -> dict:
  cpu = platform.processor()
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      cpu = next((l.split(':', 1)[1].strip() for l in f if l.startswith('model name')), cpu)
  except OSError:
    pass
  return {'cpu': cpu, 'cores': os.cpu_count(), 'load_before': os.getloadavg()[0],
          'jax': jax.__version__, 'devices': [str(d) for d in jax.devices()]}


def parse_name(name: str) -> tuple:
  """'pspnet/full/seed1' -> ('pspnet', 'full', 1); 'pspnet/full' -> ('pspnet', 'full', None)."""
  parts = name.strip('/').split('/')
  seed = None
  if len(parts) >= 3 and parts[-1].startswith('seed') and parts[-1][4:].isdigit():
    seed = int(parts[-1][4:])
    parts = parts[:-1]
  if len(parts) < 2:
    raise app.UsageError(f'--name={name!r}: expected <group>/<row>[/seed<k>]')
  return parts[0], '/'.join(parts[1:]), seed


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  group, row, seed = parse_name(_NAME.value)
  config = _CONFIG.value
  overrides = [a for a in sys.argv[1:] if a.startswith('--config.')]
  spec = next((a.split('=', 1)[1] for a in sys.argv[1:] if a.startswith('--config=')), '')
  info = machine()
  start = time.time()
  scalars = loop.train_and_evaluate(config, _WORKDIR.value)
  wall = time.time() - start
  info['load_after'] = os.getloadavg()[0]
  metrics = {k: float(v) for k, v in scalars.items()}
  record = {
      'name': _NAME.value, 'group': group, 'row': row, 'seed': config.seed if seed is None
      else seed, 'command': 'python -m jaxseg.tools.record ' + ' '.join(
          shlex.quote(a) for a in sys.argv[1:]),
      'config': spec, 'overrides': overrides, 'commit': commit_id(),
      'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
      'method': config.method, 'steps': int(config.num_train_steps),
      'batch_size': int(config.batch_size), 'wall_s': round(wall, 1), 'machine': info,
      'columns': list(_COLUMNS.value) or sorted(k for k in metrics if '/' not in k),
      'metrics': metrics}
  path = os.path.join(_OUT.value, _NAME.value.strip('/') + '.json')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=1, sort_keys=True)
    f.write('\n')
  os.replace(tmp, path)
  print(f'wrote {path} ({wall:.0f} s)', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
