"""Kill training at random moments, resume, and check the result is bit-identical.

  python -m jaxseg.tools.kill_test --configs=configs/deeplabv2.py:smoke,configs/padnet.py:smoke,configs/ctkt.py:dsr_only,smoke

For each config: one uninterrupted run (the reference), then one run that is killed with
SIGKILL at `--kills` moments (at least one while a checkpoint is being written, one during an
evaluation, the others at seeded random times) and resumed each time with the same command,
plus one SIGTERM (must save the current step and exit 143), then resumed to the end; then
its newest checkpoint is cut short and the run started again (it must warn, fall back to the
previous checkpoint and train to the same state). The final train state (every array of the last checkpoint: params, batch_stats, opt_state, step,
rng) and the final evaluation report must equal the reference's bit for bit. Runs on CPU
(JAX_PLATFORMS=cpu), where the steps are deterministic. Exit status 1 on any difference or
when fewer kills than asked landed mid-run.

`--configs` takes any comma-separated list of config specs (a comma followed by a path ending
in `.py` starts the next spec, so `configs/padnet.py:smoke,C` stays one).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxseg.training.checkpoint import tree_digest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def split_specs(text: str) -> list[str]:
  """'a.py:smoke,C,b.py' -> ['a.py:smoke,C', 'b.py']."""
  return [s for s in re.split(r',(?=[^,:]*\.py(?::|,|$))', text) if s]


def _env(cache_dir: str) -> dict:
  return dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=REPO,
              JAX_DISABLE_MOST_OPTIMIZATIONS='1', JAX_COMPILATION_CACHE_DIR=cache_dir,
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='-1')


def _command(spec: str, workdir: str, overrides: list[str]) -> list[str]:
  return [sys.executable, '-m', 'jaxseg.main', f'--config={spec}', f'--workdir={workdir}',
          *overrides]


def state_digest(workdir: str) -> tuple[int, str]:
  """(step, SHA-256 over every array) of the newest checkpoint, read without a model."""
  ckpt = os.path.join(os.path.abspath(workdir), 'checkpoints')
  step = max(int(n) for n in os.listdir(ckpt) if n.isdigit())
  tree = ocp.StandardCheckpointer().restore(os.path.join(ckpt, str(step), 'default'))
  return step, tree_digest(jax.tree.map(np.asarray, tree))


def cut_three_files(step_dir: str):
  """Halves the three largest files of a checkpoint step (a disk filled mid-write)."""
  files = [os.path.join(r, n) for r, _, names in os.walk(step_dir) for n in names]
  for path in sorted(files, key=os.path.getsize)[-3:]:
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)


def _eval_report(workdir: str) -> str:
  with open(os.path.join(workdir, 'eval', 'latest.txt'), encoding='utf-8') as f:
    return f.read()


class Run:
  """One `jaxseg.main` process whose stdout is watched line by line."""

  def __init__(self, cmd, env, log):
    self.lines = []
    self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=log, text=True, bufsize=1)
    os.set_blocking(self.proc.stdout.fileno(), False)
    self._partial = ''

  def poll_lines(self):
    try:
      chunk = self.proc.stdout.read()
    except (BlockingIOError, TypeError):
      chunk = None
    if chunk:
      text = self._partial + chunk
      *done, self._partial = text.split('\n')
      self.lines += done
    return self.proc.poll() is None

  def resumed_from(self):
    for line in self.lines:
      m = re.search(r'steps (\d+)\.\.(\d+)', line)
      if m:
        return int(m.group(1))
    return None


def _wait(run: Run, trigger, ckpt_dir: str, timeout: float) -> tuple[bool, str]:
  """Polls until `trigger(run, tmp_seen)` says kill (-> True, what) or the run ends."""
  end = time.time() + timeout
  while time.time() < end:
    alive = run.poll_lines()
    if not alive:
      return False, 'the run ended first'
    tmp = os.path.isdir(ckpt_dir) and any('tmp' in n for n in os.listdir(ckpt_dir))
    what = trigger(run, tmp)
    if what:
      return True, what
    time.sleep(0.002)
  return False, 'timeout'


def kill_test(spec: str, overrides: list[str], kills: int, seed: int, root: str,
              cache_dir: str, eval_steps=(), timeout: float = 900) -> dict:
  """Reference run, killed-and-resumed runs, comparison; returns a summary dict."""
  env = _env(cache_dir)
  name = re.sub(r'\W+', '_', spec)
  ref_dir, kill_dir = os.path.join(root, name, 'reference'), os.path.join(root, name, 'killed')
  for d in (ref_dir, kill_dir):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
  log = open(os.path.join(root, name, 'stderr.log'), 'w', encoding='utf-8')  # pylint: disable=consider-using-with
  t0 = time.time()
  ref = subprocess.run(_command(spec, ref_dir, overrides), cwd=REPO, env=env, stderr=log,
                       stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
  ref_seconds = time.time() - t0
  if ref.returncode != 0:
    raise RuntimeError(f'{spec}: the reference run failed (see {log.name})')
  total = int(re.search(r'steps \d+\.\.(\d+)', ref.stdout).group(1))
  rng = random.Random(seed)
  plan = ['checkpoint write', 'evaluation'] + ['random'] * max(kills - 2, 0) + ['SIGTERM']
  events = []
  ckpt_dir = os.path.join(kill_dir, 'checkpoints')
  for kind in plan:
    run = Run(_command(spec, kill_dir, overrides), env, log)
    chosen = {}

    def trigger(r, tmp_seen, kind=kind, chosen=chosen):
      step = _last_step(r.lines)
      if kind == 'checkpoint write':
        return 'a checkpoint folder being written' if tmp_seen else None
      if kind == 'evaluation':  # an eval step's checkpoint save started: its evaluation is next
        if step in eval_steps and (os.path.isdir(os.path.join(ckpt_dir, str(step))) or tmp_seen):
          chosen.setdefault('at', time.time())
          if time.time() - chosen['at'] > 0.3:
            return f'during the evaluation after step {step}'
        return None
      resumed = r.resumed_from()
      if resumed is None or resumed + 1 > total - 1:
        return None
      chosen.setdefault('step', rng.randint(resumed + 1, total - 1))
      if step is not None and step >= chosen['step']:
        chosen.setdefault('at', time.time() + rng.uniform(0.0, 0.1))
        if time.time() >= chosen['at']:
          return f'after step {step} (drawn: {chosen["step"]})'
      return None
    landed, what = _wait(run, trigger, ckpt_dir, timeout)
    if landed:
      os.kill(run.proc.pid, signal.SIGTERM if kind == 'SIGTERM' else signal.SIGKILL)
    run.proc.wait()
    run.poll_lines()
    event = {'kind': kind, 'landed': landed, 'when': what, 'resumed_from': run.resumed_from(),
             'returncode': run.proc.returncode}
    if kind == 'SIGTERM' and landed:
      event['clean_exit'] = run.proc.returncode == 128 + signal.SIGTERM and any(
          'stopped by SIGTERM' in l for l in run.lines)
    events.append(event)
    print(f'  {kind:16s} landed={landed} ({what}), run resumed from step '
          f'{event["resumed_from"]}, exit {run.proc.returncode}', flush=True)
  final = subprocess.run(_command(spec, kill_dir, overrides), cwd=REPO, env=env, stderr=log,
                         stdout=subprocess.PIPE, text=True, timeout=timeout, check=False)
  if final.returncode != 0:
    raise RuntimeError(f'{spec}: the final resumed run failed (see {log.name})')
  ref_step, ref_digest = state_digest(ref_dir)
  got_step, got_digest = state_digest(kill_dir)
  # The newest checkpoint cut short (three files halved): the run must warn, fall back to the
  # previous checkpoint and train to the same state again.
  newest = os.path.join(ckpt_dir, str(got_step))
  cut_three_files(newest)
  again = subprocess.run(_command(spec, kill_dir, overrides), cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=timeout, check=False)
  log.write(again.stderr)
  log.close()
  fell_back = again.returncode == 0 and f'checkpoint {newest} is damaged' in again.stderr
  damaged_step, damaged_digest = state_digest(kill_dir)
  resumed = re.search(r'steps (\d+)', again.stdout)
  print(f'  damaged newest  fell back with a warning: {fell_back}, resumed from step '
        f'{resumed.group(1) if resumed else "?"}', flush=True)
  landed = sum(e['landed'] for e in events if e['kind'] != 'SIGTERM')
  summary = {
      'config': spec, 'overrides': overrides, 'steps': total, 'reference_seconds': ref_seconds,
      'kills_landed': landed, 'kills_asked': kills, 'events': events,
      'final_step': [ref_step, got_step], 'state_identical': ref_digest == got_digest,
      'eval_identical': _eval_report(ref_dir) == _eval_report(kill_dir),
      'sigterm_clean': all(e.get('clean_exit', True) for e in events),
      'state_sha256': ref_digest, 'damaged_newest_fell_back': fell_back,
      'damaged_newest_identical': (damaged_step, damaged_digest) == (ref_step, ref_digest)}
  summary['ok'] = (summary['state_identical'] and summary['eval_identical'] and
                   summary['sigterm_clean'] and landed >= kills and ref_step == got_step and
                   fell_back and summary['damaged_newest_identical'])
  return summary


def _last_step(lines):
  for line in reversed(lines):
    m = re.match(r'step (\d+)/', line)
    if m:
      return int(m.group(1))
  return None


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m jaxseg.tools.kill_test', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--configs', required=True, help='comma-separated config specs')
  p.add_argument('--kills', type=int, default=5, help='SIGKILLs per config (>= 2)')
  p.add_argument('--seed', type=int, default=0, help='seed of the random kill moments')
  p.add_argument('--steps', type=int, default=40)
  p.add_argument('--eval_every', type=int, default=15)
  p.add_argument('--checkpoint_every', type=int, default=5)
  p.add_argument('--workroot', default=os.path.join(tempfile.gettempdir(), 'jaxseg_kill_test'))
  p.add_argument('--out', default='', help='write the summaries as JSON here')
  p.add_argument('overrides', nargs='*', help='extra --config.<field>=<value> for every run')
  args = p.parse_args(argv)
  overrides = [f'--config.num_train_steps={args.steps}',
               f'--config.eval_every_steps={args.eval_every}',
               f'--config.checkpoint_every_steps={args.checkpoint_every}',
               '--config.log_every_steps=1', *args.overrides]
  cache = os.path.join(args.workroot, 'jax_cache')
  os.makedirs(cache, exist_ok=True)
  summaries = []
  for spec in split_specs(args.configs):
    print(f'{spec}:', flush=True)
    s = kill_test(spec, overrides, args.kills, args.seed, args.workroot, cache,
                  eval_steps=set(range(args.eval_every, args.steps, args.eval_every)))
    summaries.append(s)
    damaged_ok = s['damaged_newest_identical'] and s['damaged_newest_fell_back']
    print(f'  -> {s["kills_landed"]}/{s["kills_asked"]} kills landed mid-run; final step '
          f'{s["final_step"][1]}; train state {"IDENTICAL" if s["state_identical"] else "DIFFERS"}'
          f'; eval report {"identical" if s["eval_identical"] else "DIFFERS"}; SIGTERM '
          f'{"clean" if s["sigterm_clean"] else "NOT clean"}; damaged newest checkpoint '
          f'{"fell back, identical" if damaged_ok else "FAILED"} '
          f'({s["reference_seconds"]:.0f} s per uninterrupted run)', flush=True)
  if args.out:
    with open(args.out, 'w', encoding='utf-8') as f:
      json.dump(summaries, f, indent=1)
  ok = all(s['ok'] for s in summaries)
  print('kill test: ' + ('PASS' if ok else 'FAIL'), flush=True)
  return 0 if ok else 1


if __name__ == '__main__':
  sys.exit(main())
