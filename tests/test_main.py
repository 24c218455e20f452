"""`python -m jaxseg.main` end to end at toy size: train, eval, predict; a bad field's error."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from conftest import REPO, run_module


def run_main(*args, timeout=600):
  return run_module('jaxseg.main', *args, timeout=timeout)


def test_smoke_train_kill9_resume_eval_predict(tmp_path):
  workdir = str(tmp_path / 'run')
  # MSC off: it only adds compile time here (tests/models covers it); each run compiles anew.
  common = ['--config=configs/deeplabv2.py:smoke', f'--workdir={workdir}',
            '--config.num_train_steps=40', '--config.eval_every_steps=20',
            '--config.checkpoint_every_steps=10', '--config.log_every_steps=10',
            '--config.model.msc=False']
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO),
             JAX_DISABLE_MOST_OPTIMIZATIONS='1')  # as run_module
  proc = subprocess.Popen([sys.executable, '-m', 'jaxseg.main', *common], cwd=REPO, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  ckpt = os.path.join(workdir, 'checkpoints', '10')
  deadline = time.time() + 600
  while not os.path.isdir(ckpt) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.2)
  time.sleep(0.5)
  killed = proc.poll() is None
  if killed:
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
  proc.wait()

  train = run_main(*common)
  assert train.returncode == 0, train.stderr[-3000:]
  resumed_from = int(re.search(r'steps (\d+)\.\.40', train.stdout).group(1))
  assert resumed_from >= 10 if killed else resumed_from == 40
  assert 'steps/s' in train.stdout and 'ETA' in train.stdout and 'mIoU' in train.stdout
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert {r['split'] for r in records} == {'train', 'val'}
  assert max(r['step'] for r in records) == 40
  assert '40' in os.listdir(os.path.join(workdir, 'checkpoints'))
  assert 'mIoU' in open(os.path.join(workdir, 'eval', 'latest.txt')).read()

  ev = run_main(*common, '--mode=eval')
  assert ev.returncode == 0, ev.stderr[-3000:]
  assert 'eval at step 40' in ev.stdout and 'floor' in ev.stdout

  pr = run_main(*common, '--mode=predict')
  assert pr.returncode == 0, pr.stderr[-3000:]
  pngs = sorted(os.listdir(os.path.join(workdir, 'predictions')))
  assert pngs == ['0000.png', '0001.png']


def test_bad_override_names_the_field(tmp_path):
  out = run_main('--config=configs/deeplabv2.py:smoke', f'--workdir={tmp_path}',
                 '--config.model.output_stride=5', timeout=120)
  assert out.returncode != 0
  assert 'config.model.output_stride=5' in out.stderr
  assert not os.path.exists(os.path.join(tmp_path, 'checkpoints'))
