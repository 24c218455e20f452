"""`python -m jaxseg.main --config=configs/padnet.py:smoke` end to end: train (+ eval), predict."""
import json
import os

from conftest import run_module


def run_main(*args, timeout=900):
  return run_module('jaxseg.main', *args, timeout=timeout)


def test_padnet_smoke_train_then_predict(tmp_path):
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/padnet.py:smoke', f'--workdir={workdir}',
            '--config.num_train_steps=3', '--config.eval_every_steps=0',
            '--config.checkpoint_every_steps=3', '--config.log_every_steps=3']
  train = run_main(*common)
  assert train.returncode == 0, train.stderr[-3000:]
  assert 'training padnet/padnet on synthetic' in train.stdout
  report = open(os.path.join(workdir, 'eval', 'latest.txt')).read()
  for word in ('mIoU', 'pixel-wise', 'rmse', 'normals', 'ods_f'):
    assert word in report, report
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_keys = set().union(*(r['metrics'] for r in records if r['split'] == 'train'))
  val_keys = set().union(*(r['metrics'] for r in records if r['split'] == 'val'))
  assert {'loss', 'loss_depth', 'loss_parsing', 'loss_inter_normals'} <= train_keys
  assert {'miou', 'depth/rmse', 'depth/abs_rel', 'normals/mean', 'contours/ods_f'} <= val_keys

  pr = run_main(*common, '--mode=predict')
  assert pr.returncode == 0, pr.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(workdir, 'predictions'))) == ['0000.png', '0001.png']


def test_distillation_override_reaches_the_config(tmp_path):
  """`--config.model.distillation=...` is a config field (a bad value fails before compiling)."""
  out = run_main('--config=configs/padnet.py:smoke', f'--workdir={tmp_path}',
                 '--config.model.distillation=D', timeout=300)
  assert out.returncode != 0
  assert "config.model.distillation='D'" in out.stderr
  assert not os.path.exists(os.path.join(tmp_path, 'checkpoints'))
