"""`python -m jaxseg.main` end to end at toy size: killed and preempted runs resume bit-identical;
train, eval, predict; a bad field's error."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from conftest import REPO, run_module
from jaxseg.tools.kill_test import state_digest


def run_main(*args, timeout=600):
  return run_module('jaxseg.main', *args, timeout=timeout)


def _start(args, stdout):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO),
             JAX_DISABLE_MOST_OPTIMIZATIONS='1')  # as run_module
  return subprocess.Popen([sys.executable, '-m', 'jaxseg.main', *args], cwd=REPO, env=env,
                          stdout=stdout, stderr=subprocess.DEVNULL, text=True)


def _wait_for(path, proc, timeout=600):
  deadline = time.time() + timeout
  while not os.path.isdir(path) and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  return proc.poll() is None  # still running: a signal now lands mid-run


def test_smoke_kill9_and_sigterm_resume_bit_identical_then_eval_predict(tmp_path):
  """SIGKILL after checkpoint 10, SIGTERM after checkpoint 20 (saves its step, exits 143), then
  the same command finishes: the final train state equals an uninterrupted run's bit for bit."""
  workdir, reference = str(tmp_path / 'run'), str(tmp_path / 'reference')
  # MSC off: it only adds compile time here (tests/models covers it); each run compiles anew.
  common = ['--config=configs/deeplabv2.py:smoke', '--config.num_train_steps=40',
            '--config.eval_every_steps=20', '--config.checkpoint_every_steps=10',
            '--config.log_every_steps=10', '--config.model.msc=False']
  straight = run_main(*common, f'--workdir={reference}')
  assert straight.returncode == 0, straight.stderr[-3000:]

  proc = _start([*common, f'--workdir={workdir}'], subprocess.DEVNULL)
  assert _wait_for(os.path.join(workdir, 'checkpoints', '10'), proc), 'the run ended first'
  os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
  proc.wait()

  with open(tmp_path / 'term.out', 'w+', encoding='utf-8') as out:
    proc = _start([*common, f'--workdir={workdir}'], out)
    assert _wait_for(os.path.join(workdir, 'checkpoints', '20'), proc), 'the run ended first'
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)  # a preemption notice
    assert proc.wait(timeout=300) == 128 + signal.SIGTERM
    out.seek(0)
    text = out.read()
  stopped = int(re.search(r'stopped by SIGTERM after step (\d+)', text).group(1))
  assert 20 <= stopped < 40 and str(stopped) in os.listdir(os.path.join(workdir, 'checkpoints'))
  assert 'Traceback' not in text

  train = run_main(*common, f'--workdir={workdir}')
  assert train.returncode == 0, train.stderr[-3000:]
  resumed_from = int(re.search(r'steps (\d+)\.\.40', train.stdout).group(1))
  assert resumed_from == stopped
  assert state_digest(workdir) == state_digest(reference)  # (step, SHA-256 of every array)
  assert 'steps/s' in train.stdout and 'ETA' in train.stdout and 'mIoU' in train.stdout
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert {r['split'] for r in records} == {'train', 'val'}
  assert max(r['step'] for r in records) == 40
  assert '40' in os.listdir(os.path.join(workdir, 'checkpoints'))
  report = open(os.path.join(workdir, 'eval', 'latest.txt')).read()
  assert 'mIoU' in report and report == open(os.path.join(reference, 'eval', 'latest.txt')).read()

  ev = run_main(*common, f'--workdir={workdir}', '--mode=eval')
  assert ev.returncode == 0, ev.stderr[-3000:]
  assert 'eval at step 40' in ev.stdout and 'floor' in ev.stdout

  pr = run_main(*common, f'--workdir={workdir}', '--mode=predict')
  assert pr.returncode == 0, pr.stderr[-3000:]
  pngs = sorted(os.listdir(os.path.join(workdir, 'predictions')))
  assert pngs == ['0000.png', '0001.png']


def test_bad_override_names_the_field(tmp_path):
  out = run_main('--config=configs/deeplabv2.py:smoke', f'--workdir={tmp_path}',
                 '--config.model.output_stride=5', timeout=120)
  assert out.returncode != 0
  assert 'config.model.output_stride=5' in out.stderr and 'Traceback' not in out.stderr
  assert not os.path.exists(os.path.join(tmp_path, 'checkpoints'))
