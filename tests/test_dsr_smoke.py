"""`python -m jaxseg.main --config=configs/dsr.py:smoke` end to end: train (+ eval), predict."""
import json
import os

from conftest import run_module


def run_main(*args, timeout=600):
  return run_module('jaxseg.main', *args, timeout=timeout)


def test_dsr_smoke_train_then_predict(tmp_path):
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/dsr.py:smoke', f'--workdir={workdir}']
  train = run_main(*common)
  assert train.returncode == 0, train.stderr[-3000:]
  assert 'training dsr/dbpn on synthetic' in train.stdout
  report = open(os.path.join(workdir, 'eval', 'latest.txt')).read()
  for word in ('DSRNet', 'bicubic', 'rmse', 'mad', 'cm'):
    assert word in report, report
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_keys = set().union(*(r['metrics'] for r in records if r['split'] == 'train'))
  val_keys = set().union(*(r['metrics'] for r in records if r['split'] == 'val'))
  assert {'loss', 'loss_bicubic', 'grad_norm'} <= train_keys
  assert {'rmse', 'mad', 'rmse_pixel', 'bicubic/rmse', 'bicubic/mad'} <= val_keys

  pr = run_main(*common, '--mode=predict')
  assert pr.returncode == 0, pr.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(workdir, 'predictions'))) == ['0000.png', '0001.png']
