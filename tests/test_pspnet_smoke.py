"""`python -m jaxseg.main --config=configs/pspnet.py:smoke` end to end: train (+ final eval),
eval of the checkpoint, predict."""
import json
import os

from conftest import run_module


def test_pspnet_smoke_train_eval_predict(tmp_path):
  workdir = str(tmp_path / 'run')
  common = ['--config=configs/pspnet.py:smoke', f'--workdir={workdir}',
            '--config.num_train_steps=6', '--config.eval_every_steps=0',
            '--config.checkpoint_every_steps=6', '--config.log_every_steps=3']
  train = run_module('jaxseg.main', *common)
  assert train.returncode == 0, train.stderr[-3000:]
  assert 'training pspnet/pspnet on synthetic' in train.stdout
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_keys = set().union(*(r['metrics'] for r in records if r['split'] == 'train'))
  assert {'loss', 'ce', 'ce_aux', 'grad_norm'} <= train_keys
  val = [r for r in records if r['split'] == 'val']
  assert val and val[-1]['step'] == 6 and 0.0 <= val[-1]['metrics']['miou'] <= 1.0

  ev = run_module('jaxseg.main', *common, '--mode=eval')
  assert ev.returncode == 0, ev.stderr[-3000:]
  assert 'eval at step 6' in ev.stdout and 'mIoU' in ev.stdout

  pr = run_module('jaxseg.main', *common, '--mode=predict')
  assert pr.returncode == 0, pr.stderr[-3000:]
  assert sorted(os.listdir(os.path.join(workdir, 'predictions'))) == ['0000.png', '0001.png']
