"""PAD-Net ablation (issue 3, part 8): the same budget for every variant, then one table.

  python -m jaxseg.tools.padnet_ablation --workdir=runs/padnet_ablation \
      --variants=single_depth,single_parsing,multitask,C \
      --override=num_train_steps=300 --override=model.depth=14

Each variant V runs `python -m jaxseg.main --config=<config>:V --workdir=<workdir>/V` plus the
`--config.<override>` flags (with a base variant, `--config=configs/padnet.py:smoke` gives
`configs/padnet.py:smoke,V`). A run whose last validation record is at `num_train_steps` is not
run again; an interrupted one resumes. The table comes from the last `val` record of each run's
`metrics.jsonl`; the last line says whether module C beats both single-task baselines.
"""
import json
import os
import subprocess
import sys

from absl import app, flags

_WORKDIR = flags.DEFINE_string('workdir', None, 'Parent directory; one sub-directory per variant.')
_CONFIG = flags.DEFINE_string('config', 'configs/padnet.py', 'Config file[:base variant].')
_VARIANTS = flags.DEFINE_list('variants', ['single_depth', 'single_parsing', 'multitask', 'C'],
                              'Ablation flags of configs/padnet.py, one run each.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'field=value, passed as --config.field.')
_TABLE_ONLY = flags.DEFINE_bool('table_only', False, 'Only print the table of existing runs.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the commands, run nothing.')
flags.mark_flags_as_required(['workdir'])

COLUMNS = [('miou', 'mIoU %', 100.0, '.2f'), ('pixel_accuracy', 'pix acc %', 100.0, '.2f'),
           ('depth/rmse', 'RMSE m', 1.0, '.4f'), ('depth/abs_rel', 'abs rel', 1.0, '.4f'),
           ('depth/d1', 'd<1.25 %', 100.0, '.2f'), ('normals/mean', 'normals mean deg', 1.0,
                                                    '.2f'),
           ('contours/ods_f', 'contour ODS F', 1.0, '.4f')]


def command(variant: str, workdir: str) -> list:
  spec = _CONFIG.value + (',' if ':' in _CONFIG.value else ':') + variant
  return [sys.executable, '-m', 'jaxseg.main', f'--config={spec}',
          f'--workdir={os.path.join(workdir, variant)}'] + [
              f'--config.{o}' for o in _OVERRIDES.value]


def read_run(path: str) -> tuple:
  """-> (last val record or None, train seconds from the first to the last train record)."""
  file = os.path.join(path, 'metrics.jsonl')
  if not os.path.exists(file):
    return None, None
  records = [json.loads(line) for line in open(file, encoding='utf-8') if line.strip()]
  val = [r for r in records if r['split'] == 'val']
  train = [r['time'] for r in records if r['split'] == 'train']
  return (val[-1] if val else None), (train[-1] - train[0] if len(train) > 1 else None)


def finished(path: str) -> bool:
  """The run's last validation record is at its config's num_train_steps."""
  rec, _ = read_run(path)
  cfg = os.path.join(path, 'config.json')
  if rec is None or not os.path.exists(cfg):
    return False
  with open(cfg, encoding='utf-8') as f:
    return rec['step'] == json.load(f).get('num_train_steps')


def table(workdir: str, variants) -> str:
  head = ['variant', 'step'] + [c[1] for c in COLUMNS] + ['train s']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  results = {}
  for v in variants:
    rec, secs = read_run(os.path.join(workdir, v))
    if rec is None:
      lines.append(f'| {v} | (no eval yet) |')
      continue
    m = results[v] = rec['metrics']
    cells = [v, str(rec['step'])]
    cells += [format(m[k] * s, f) if k in m else '-' for k, _, s, f in COLUMNS]
    cells.append(f'{secs:.0f}' if secs else '-')
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines.append(verdict(results))
  return '\n'.join(lines)


def verdict(results: dict) -> str:
  """Module C against the single-task baselines (mIoU higher and depth RMSE lower is better)."""
  need = ('C', 'single_parsing', 'single_depth')
  if not all(v in results for v in need):
    return ''
  c, sp, sd = (results[v] for v in need)
  d_miou = 100 * (c['miou'] - sp['miou'])
  d_rmse = c['depth/rmse'] - sd['depth/rmse']
  both = d_miou > 0 and d_rmse < 0
  return (f'\nmodule C vs single-task: mIoU {d_miou:+.2f} points, depth RMSE {d_rmse:+.4f} m '
          f'-> C {"improves" if both else "does not improve"} both final tasks at this budget')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  workdir = _WORKDIR.value
  if not _TABLE_ONLY.value:
    for v in _VARIANTS.value:
      cmd = command(v, workdir)
      print(' '.join(cmd[1:]), flush=True)
      if _DRY_RUN.value or finished(os.path.join(workdir, v)):
        continue
      os.makedirs(os.path.join(workdir, v), exist_ok=True)
      with open(os.path.join(workdir, v, 'console.log'), 'a', encoding='utf-8') as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=True)
  text = table(workdir, _VARIANTS.value)
  print(text, flush=True)
  if not _DRY_RUN.value:
    with open(os.path.join(workdir, 'table.md'), 'w', encoding='utf-8') as f:
      f.write(text + '\n')


if __name__ == '__main__':
  app.run(main)
