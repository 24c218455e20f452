"""`python -m jaxseg.main --config=configs/ctkt.py:smoke` end to end: CTKT trains with RGB-D
(+ eval), then predicts with depth alone."""
import json
import os

from conftest import run_module


def run_main(*args, timeout=600):
  return run_module('jaxseg.main', *args, timeout=timeout)


def test_ctkt_smoke_train_then_predict(tmp_path):
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/ctkt.py:smoke', f'--workdir={workdir}']
  train = run_main(*common)
  assert train.returncode == 0, train.stderr[-3000:]
  assert 'training ctkt/dbpn on synthetic' in train.stdout
  report = open(os.path.join(workdir, 'eval', 'latest.txt')).read()
  for word in ('DSRNet', 'bicubic', 'rmse', 'mad', 'cm'):
    assert word in report, report
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_recs = [r['metrics'] for r in records if r['split'] == 'train']
  val_keys = set().union(*(r['metrics'] for r in records if r['split'] == 'val'))
  assert {'loss', 'loss_dsr', 'loss_de', 'loss_p', 'loss_a', 'loss_s', 'teacher_dsr',
          'loss_bicubic', 'grad_norm'} <= set(train_recs[-1])
  m = train_recs[-1]  # log_every_steps=1: one step's terms add up to the loss
  want = m['loss_dsr'] + m['loss_de'] + m['loss_p'] + m['loss_a'] + 0.1 * m['loss_s']
  assert abs(m['loss'] - want) <= 1e-4 * abs(want), m
  assert m['teacher_dsr'] in (0.0, 1.0)
  assert {'rmse', 'mad', 'rmse_pixel', 'bicubic/rmse', 'bicubic/mad'} <= val_keys

  pr = run_main(*common, '--mode=predict')
  assert pr.returncode == 0, pr.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(workdir, 'predictions'))) == ['0000.png', '0001.png']
