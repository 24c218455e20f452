"""docs/results.md from the results files in docs/results/ (written by `jaxseg.tools.record`).

  python -m jaxseg.tools.results_table [--results_dir=docs/results] [--out=docs/results.md]

One table per group (the first part of a result's name), one row per row name, in the order
the rows' files were first written; rows with several seeds show mean ± standard deviation
(population, over the seeds) and the seed count. Each table lists the commands that made it.
"""
import collections
import glob
import json
import os

import numpy as np
from absl import app, flags

from jaxseg.config_files import REPO_ROOT

_DIR = flags.DEFINE_string('results_dir', os.path.join(REPO_ROOT, 'docs', 'results'), '')
_OUT = flags.DEFINE_string('out', os.path.join(REPO_ROOT, 'docs', 'results.md'), '')

PERCENT = {'miou', 'pixel_accuracy', 'mean_accuracy'}  # fractions shown as % (also 'tta/miou', ...)


def is_percent(key: str) -> bool:
  return key.split('/')[-1] in PERCENT


def load(results_dir: str) -> list:
  records = []
  for path in sorted(glob.glob(os.path.join(results_dir, '**', '*.json'), recursive=True)):
    with open(path, encoding='utf-8') as f:
      rec = json.load(f)
    if 'group' in rec and 'metrics' in rec:
      rec['path'] = os.path.relpath(path, os.path.dirname(results_dir))
      records.append(rec)
  return records


def cell(values, key: str) -> str:
  v = np.asarray(values, np.float64) * (100.0 if is_percent(key) else 1.0)
  text = f'{v.mean():.2f}' if abs(v.mean()) >= 1 else f'{v.mean():.4f}'
  if len(v) > 1:
    spread = f'{v.std():.2f}' if abs(v.mean()) >= 1 else f'{v.std():.4f}'
    text += f' ± {spread}'
  return text


def group_table(group: str, records: list) -> str:
  rows = collections.OrderedDict()
  for rec in sorted(records, key=lambda r: r['date']):
    rows.setdefault(rec['row'], []).append(rec)
  columns = records[0]['columns']
  head = ['row', 'seeds'] + [f'{c} (%)' if is_percent(c) else c for c in columns] + [
      'steps', 'wall s (mean)']
  lines = [f'## {group}', '', '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row, recs in rows.items():
    cells = [row, ', '.join(str(r['seed']) for r in recs)]
    for c in columns:
      vals = [r['metrics'][c] for r in recs if c in r['metrics']]
      cells.append(cell(vals, c) if vals else '–')
    cells += [str(recs[0]['steps']), f"{np.mean([r['wall_s'] for r in recs]):.0f}"]
    lines.append('| ' + ' | '.join(cells) + ' |')
  machines = sorted({f"{r['machine']['cpu']} ({r['machine']['cores']} cores)" for r in records})
  commits = sorted({r['commit'] for r in records})
  lines += ['', f'Machine: {"; ".join(machines)}. Commits: {", ".join(commits)}. Files: '
            f'`docs/results/{group}/`. Commands:', '']
  lines += [f'- `{r["command"]}`' for r in sorted(records, key=lambda r: r['name'])]
  return '\n'.join(lines)


def render(records: list) -> str:
  groups = collections.OrderedDict()
  for rec in sorted(records, key=lambda r: r['group']):
    groups.setdefault(rec['group'], []).append(rec)
  out = ['# Results', '',
         'Written by `python -m jaxseg.tools.results_table` from the files in `docs/results/` '
         '(each written by `python -m jaxseg.tools.record`, whose command is listed under its '
         'table). Budgets are small (2 shared CPU cores): these compare variants at one budget, '
         'they do not reproduce the papers\' numbers.', '']
  for group, recs in groups.items():
    out += [group_table(group, recs), '']
  return '\n'.join(out)


def main(argv):
  del argv
  text = render(load(_DIR.value))
  with open(_OUT.value, 'w', encoding='utf-8') as f:
    f.write(text)
  print(f'wrote {_OUT.value}')


if __name__ == '__main__':
  app.run(main)
