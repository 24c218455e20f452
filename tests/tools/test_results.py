"""Results files -> docs/results.md: names, seeds aggregated as mean ± std, the commands listed."""
import json

import pytest
from absl import app

from jaxseg.tools import record, results_table


def test_parse_name():
  assert record.parse_name('pspnet/full/seed2') == ('pspnet', 'full', 2)
  assert record.parse_name('ctkt/lp+la/dynamic') == ('ctkt', 'lp+la/dynamic', None)
  with pytest.raises(app.UsageError, match='group'):
    record.parse_name('pspnet')


def _write(root, name, seed, miou, rmse, date):
  group, row, _ = record.parse_name(name)
  rec = {'name': name, 'group': group, 'row': row, 'seed': seed, 'command': f'cmd {name}',
         'config': 'configs/x.py', 'overrides': [], 'commit': 'abc', 'date': date,
         'method': 'x', 'steps': 10, 'batch_size': 2, 'wall_s': 12.0 + seed,
         'machine': {'cpu': 'cpu', 'cores': 2}, 'columns': ['miou', 'rmse'],
         'metrics': {'miou': miou, 'rmse': rmse, 'iou/a': 0.1}}
  path = root / (name + '.json')
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(rec))


def test_table_aggregates_seeds(tmp_path):
  root = tmp_path / 'results'
  _write(root, 'g/base/seed0', 0, 0.40, 2.0, '2026-01-01 00:00 UTC')
  _write(root, 'g/base/seed1', 1, 0.50, 4.0, '2026-01-01 00:01 UTC')
  _write(root, 'g/other', 0, 0.25, 0.5, '2026-01-01 00:02 UTC')
  text = results_table.render(results_table.load(str(root)))
  lines = text.splitlines()
  assert '| row | seeds | miou (%) | rmse | steps | wall s (mean) |' in lines
  # mean 45.00, population std 5.00 (in %); rmse mean 3.00 std 1.00; wall mean 12.5.
  assert '| base | 0, 1 | 45.00 ± 5.00 | 3.00 ± 1.00 | 10 | 12 |' in lines
  assert '| other | 0 | 25.00 | 0.5000 | 10 | 12 |' in lines
  assert '- `cmd g/base/seed0`' in lines and '- `cmd g/other`' in lines
