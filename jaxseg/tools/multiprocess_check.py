"""Multi-process training on localhost, checked against one process on as many devices.

  python -m jaxseg.tools.multiprocess_check                    # 2 and 4 processes, kill test
  python -m jaxseg.tools.multiprocess_check --processes=2 --workdir=/tmp/mp

For each N in --processes, N `python -m jaxseg.main` processes (CPU, --devices_per_process
devices each, coordinator on 127.0.0.1:<free port>) train configs/deeplabv2.py:smoke for a few
steps with a global batch of one example per device (each process loads only its slice),
checkpoint, evaluate (the val split does not fill the last eval batch: padded and masked) and,
for N=2, predict. A one-process run on N * devices_per_process devices trains the same config.
Checked (each a line of the JSON report; exit status 1 when one fails):
  * per-step losses and final parameters agree within float32 reduction-order tolerance, and the
    eval confusion matrices are identical and count every labelled val pixel exactly once;
  * only process 0 wrote TensorBoard, metrics.jsonl and prediction images (one event file, no
    duplicated (step, split) records, the image count), every process wrote its Orbax shard
    (checkpoints/<step>/default/ocdbt.process_<i>), every socket the processes listen on is a
    loopback one;
  * with --kill (default on): a 2-process run loses process 1 (SIGKILL) after its first
    checkpoint; process 0 stops by itself within a bounded time, its log naming task 1; the
    relaunched job resumes from that checkpoint and ends with the uninterrupted run's parameters.
Every wait is bounded (--timeout per launch); stray processes are killed before exiting.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxseg import config_files
from jaxseg.data import recipes, sources

REPO = config_files.REPO_ROOT
CONFIG = 'configs/deeplabv2.py:smoke'
STEPS, CHECKPOINT_EVERY, NUM_VAL = 8, 4, 6
HEARTBEAT_TIMEOUT = 10  # seconds: JAXSEG_HEARTBEAT_TIMEOUT of the workers
# float32 reduction order over a few steps: loss relative, each leaf's max |diff| / max |leaf|
LOSS_RTOL, PARAM_TOL = 1e-4, 1e-4


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def main_args(workdir: str, num_devices: int, *extra: str) -> list[str]:
  """jaxseg.main arguments: the toy run with one example per device in every batch."""
  return [f'--config={CONFIG}', f'--workdir={workdir}', '--config.model.msc=False',
          f'--config.num_train_steps={STEPS}', f'--config.checkpoint_every_steps={CHECKPOINT_EVERY}',
          '--config.log_every_steps=1', '--config.eval_every_steps=0', '--config.data_threads=1',
          f'--config.batch_size={num_devices}', f'--config.eval_batch_size={num_devices}',
          f'--config.dataset.num_val={NUM_VAL}', *extra]


def worker_env(devices: int, cache_dir: str, **jaxseg_env) -> dict:
  env = {k: v for k, v in os.environ.items() if not k.startswith('JAXSEG_')}
  env.update(JAX_PLATFORMS='cpu', PYTHONPATH=REPO, PYTHONUNBUFFERED='1',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}',
             JAX_DISABLE_MOST_OPTIMIZATIONS='1', JAX_COMPILATION_CACHE_DIR=cache_dir,
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAXSEG_HEARTBEAT_TIMEOUT=str(HEARTBEAT_TIMEOUT), JAXSEG_INIT_TIMEOUT='120')
  env.update({f'JAXSEG_{k.upper()}': str(v) for k, v in jaxseg_env.items()})
  return env


class Job:
  """`num_processes` jaxseg.main processes (0 = one plain process, no distributed runtime)."""

  def __init__(self, name: str, root: str, num_processes: int, devices: int, args: list[str]):
    self.name, self.logs = name, []
    cache = os.path.join(root, 'jax_cache')
    os.makedirs(os.path.join(root, 'logs'), exist_ok=True)
    port = free_port()
    self.procs = []
    for i in range(max(num_processes, 1)):
      dist = (dict(coordinator=f'127.0.0.1:{port}', num_processes=num_processes, process_id=i)
              if num_processes else {})
      log = os.path.join(root, 'logs', f'{name}_p{i}.txt')
      self.logs.append(log)
      with open(log, 'w', encoding='utf-8') as f:
        self.procs.append(subprocess.Popen(
            [sys.executable, '-m', 'jaxseg.main', *args], cwd=REPO, stdout=f,
            stderr=subprocess.STDOUT, env=worker_env(devices, cache, **dist)))

  def wait(self, timeout: float) -> list[int | None]:
    """Return codes; processes still running at the deadline are killed (None)."""
    deadline = time.time() + timeout
    for p in self.procs:
      try:
        p.wait(max(deadline - time.time(), 0.1))
      except subprocess.TimeoutExpired:
        pass
    codes = [p.poll() for p in self.procs]
    self.kill()
    return codes

  def kill(self):
    for p in self.procs:
      if p.poll() is None:
        p.kill()
        p.wait()

  def log(self, i: int) -> str:
    with open(self.logs[i], encoding='utf-8', errors='replace') as f:
      return f.read()


def listening_addresses(pid: int) -> list[str]:
  """Local addresses (hex, as in /proc/net/tcp*) of the TCP sockets `pid` listens on."""
  try:
    inodes = {os.readlink(f'/proc/{pid}/fd/{fd}')[8:-1] for fd in os.listdir(f'/proc/{pid}/fd')
              if os.readlink(f'/proc/{pid}/fd/{fd}').startswith('socket:[')}
  except OSError:
    return []
  found = []
  for table in ('tcp', 'tcp6'):
    with open(f'/proc/{pid}/net/{table}', encoding='ascii') as f:
      for row in f.readlines()[1:]:
        cols = row.split()
        if cols[3] == '0A' and cols[9] in inodes:  # state LISTEN
          found.append(cols[1].split(':')[0])
  return found


def is_loopback(hex_addr: str) -> bool:
  if len(hex_addr) == 8:  # IPv4, little-endian: 127.x.x.x ends in 7F
    return hex_addr.endswith('7F')
  return hex_addr in ('00000000000000000000000001000000',) or (
      hex_addr.startswith('0000000000000000FFFF0000') and hex_addr.endswith('7F'))


def train_losses(workdir: str) -> dict[int, float]:
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    records = [json.loads(line) for line in f]
  return {r['step']: r['metrics']['loss'] for r in records if r['split'] == 'train'}


def final_params(workdir: str) -> dict[str, np.ndarray]:
  """params and batch_stats of the last checkpoint, flat 'params/a/b' -> NumPy."""
  path = os.path.join(workdir, 'checkpoints', str(STEPS), 'default')
  ckptr = ocp.PyTreeCheckpointer()
  tree = ckptr.metadata(path).item_metadata.tree
  args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
  restored = ckptr.restore(path, args=ocp.args.PyTreeRestore(restore_args=args))
  flat = jax.tree_util.tree_flatten_with_path(
      {k: restored[k] for k in ('params', 'batch_stats')})[0]
  return {jax.tree_util.keystr(p): np.asarray(v) for p, v in flat}


def labelled_val_pixels() -> int:
  """Val pixels with a label (not ignore) under the eval transform: the confusion-matrix sum."""
  config = config_files.load_config(CONFIG)
  with config.unlocked():
    config.dataset.num_val = NUM_VAL
  source = sources.make_source(config.dataset, 'val')
  transform = recipes.make_eval_transform(config.dataset.augment, ('image', 'label'))
  return int(sum((transform(source[i])['label'] != 255).sum() for i in range(len(source))))


def compare(dist_dir: str, ref_dir: str) -> dict:
  """Agreement of losses, final parameters and the final confusion matrix."""
  dl, rl = train_losses(dist_dir), train_losses(ref_dir)
  steps = sorted(rl)
  loss_abs = max(abs(dl[k] - rl[k]) for k in steps) if set(dl) == set(rl) else float('inf')
  loss_rel = max(abs(dl[k] - rl[k]) / abs(rl[k]) for k in steps) if set(dl) == set(rl) else 1.0
  dp, rp = final_params(dist_dir), final_params(ref_dir)
  scale = max(float(np.abs(v).max()) for v in rp.values())
  param_abs = max(float(np.abs(dp[k] - rp[k]).max()) for k in rp)
  param_rel = max(float(np.abs(dp[k] - rp[k]).max() / max(np.abs(rp[k]).max(), 1e-12))
                  for k in rp)
  name = f'step_{STEPS:07d}_sums.npz'
  dc = np.load(os.path.join(dist_dir, 'eval', name))['confusion']
  rc = np.load(os.path.join(ref_dir, 'eval', name))['confusion']
  return dict(steps=steps, loss_max_abs_diff=loss_abs, loss_max_rel_diff=loss_rel,
              param_scale=scale, param_max_abs_diff=param_abs, param_max_rel_diff=param_rel,
              confusion_equal=bool(np.array_equal(dc, rc)), confusion_sum=int(dc.sum()),
              losses_ok=loss_rel <= LOSS_RTOL, params_ok=param_rel <= PARAM_TOL)


def inspect_workdir(workdir: str, num_processes: int, predictions: int | None) -> dict:
  """Who wrote what: one TensorBoard file, unduplicated jsonl, every process's Orbax shard."""
  events = os.listdir(os.path.join(workdir, 'tensorboard'))
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    keys = [(r['step'], r['split']) for r in map(json.loads, f)]
  shards = {}
  for step in (CHECKPOINT_EVERY, STEPS):
    d = os.path.join(workdir, 'checkpoints', str(step), 'default')
    shards[step] = sorted(x for x in os.listdir(d) if x.startswith('ocdbt.process_'))
  want = [f'ocdbt.process_{i}' for i in range(num_processes)]
  out = dict(event_files=len(events), jsonl_records=len(keys),
             jsonl_duplicates=len(keys) - len(set(keys)), orbax_shards=shards,
             writers_ok=len(events) == 1 and len(keys) == len(set(keys)) and
             all(s == want for s in shards.values()))
  if predictions is not None:
    pngs = sorted(os.listdir(os.path.join(workdir, 'predictions')))
    out['prediction_images'] = pngs
    out['writers_ok'] = out['writers_ok'] and pngs == [f'{i:04d}.png' for i in range(predictions)]
  return out


def run_pair(root: str, n: int, devices: int, timeout: float, pixels: int) -> dict:
  """N processes vs one process on N * devices devices; for N=2 also predict."""
  total = n * devices
  ref_dir, dist_dir = os.path.join(root, f'ref{total}'), os.path.join(root, f'dist{n}')
  t = time.time()
  ref = Job(f'ref{total}', root, 0, total, main_args(ref_dir, total))
  ref_codes = ref.wait(timeout)
  ref_s = time.time() - t
  t = time.time()
  job = Job(f'dist{n}', root, n, devices, main_args(dist_dir, total))
  listening = []
  while time.time() - t < timeout and any(p.poll() is None for p in job.procs):
    if os.path.isdir(os.path.join(dist_dir, 'checkpoints', str(CHECKPOINT_EVERY))) and not listening:
      listening = [a for p in job.procs for a in listening_addresses(p.pid)]
    time.sleep(0.2)
  codes = job.wait(1)
  out = dict(processes=n, devices=total, ref_seconds=round(ref_s, 1),
             dist_seconds=round(time.time() - t, 1), ref_codes=ref_codes, dist_codes=codes,
             listening_sockets=len(listening),
             loopback_only=bool(listening) and all(map(is_loopback, listening)))
  if ref_codes != [0] or codes != [0] * n:
    out['log_tail'] = job.log(0)[-3000:] if codes != [0] * n else ref.log(0)[-3000:]
    out['ok'] = False
    return out
  out.update(compare(dist_dir, ref_dir))
  predictions = None
  if n == 2:
    pred = Job(f'predict{n}', root, n, devices, main_args(dist_dir, total, '--mode=predict'))
    out['predict_codes'] = pred.wait(timeout)
    predictions = config_files.load_config(CONFIG).predict.num_examples
  out.update(inspect_workdir(dist_dir, n, predictions))
  out['confusion_counts_each_pixel_once'] = out['confusion_sum'] == pixels
  out['ok'] = bool(out['losses_ok'] and out['params_ok'] and out['confusion_equal'] and
                   out['confusion_counts_each_pixel_once'] and out['writers_ok'] and
                   out['loopback_only'] and out.get('predict_codes', [0] * n) == [0] * n)
  return out


def run_kill(root: str, devices: int, timeout: float) -> dict:
  """2 processes; SIGKILL process 1 after the first checkpoint; relaunch; resume."""
  total = 2 * devices
  workdir = os.path.join(root, 'kill2')
  job = Job('kill2', root, 2, devices, main_args(workdir, total))
  first = os.path.join(workdir, 'checkpoints', str(CHECKPOINT_EVERY))
  t = time.time()
  while not os.path.isdir(first) and job.procs[1].poll() is None and time.time() - t < timeout:
    time.sleep(0.02)
  # Steps are fast here: freeze both (SIGSTOP) so that process 1 dies between the first and the
  # last checkpoint (the next save takes >= 1 s, the poll 20 ms), then let process 0 go on alone.
  for p in job.procs:
    if p.poll() is None:
      os.kill(p.pid, signal.SIGSTOP)
  out = {'checkpoints_at_kill': sorted(os.listdir(os.path.dirname(first)))}
  done = job.procs[0].poll()
  killed_at = time.time()
  if job.procs[1].poll() is None:
    job.procs[1].kill()
  if done is None:
    os.kill(job.procs[0].pid, signal.SIGCONT)
  try:
    job.procs[0].wait(timeout=6 * HEARTBEAT_TIMEOUT + 60)
  except subprocess.TimeoutExpired:
    pass
  survivor_code = job.procs[0].poll()
  out['survivor_exit_seconds'] = round(time.time() - killed_at, 1)
  job.kill()
  text = job.log(0)
  named = re.search(r'unhealthy[^\n]*\n\s*1\s*\n', text) is not None
  out.update(killed_running=done is None, survivor_code=survivor_code,
             bound_seconds=6 * HEARTBEAT_TIMEOUT + 60, message_names_process_1=named,
             message=next((l for l in text.splitlines() if 'unhealthy' in l), ''))
  resumed = Job('resume2', root, 2, devices, main_args(workdir, total))
  out['resume_codes'] = resumed.wait(timeout)
  m = re.search(rf'steps (\d+)\.\.{STEPS}', resumed.log(0))
  out['resumed_from'] = int(m.group(1)) if m else None
  if out['resume_codes'] == [0, 0]:
    agreement = compare(workdir, os.path.join(root, f'ref{total}'))
    out['resume_param_max_abs_diff'] = agreement['param_max_abs_diff']
    out['resume_params_ok'] = agreement['params_ok']
  out['ok'] = bool(out['killed_running'] and survivor_code not in (0, None) and named and
                   out['resumed_from'] == CHECKPOINT_EVERY and out.get('resume_params_ok'))
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--processes', default='2,4', help='comma-separated process counts')
  parser.add_argument('--devices_per_process', type=int, default=2)
  parser.add_argument('--workdir', default='', help='kept when given; a temporary dir otherwise')
  parser.add_argument('--timeout', type=float, default=900, help='seconds per launch')
  parser.add_argument('--kill', action=argparse.BooleanOptionalAction, default=True)
  args = parser.parse_args(argv)
  root = args.workdir or tempfile.mkdtemp(prefix='jaxseg-multiprocess-')
  os.makedirs(root, exist_ok=True)
  pixels = labelled_val_pixels()
  report, t0 = {}, time.time()
  try:
    for n in map(int, args.processes.split(',')):
      report[f'processes_{n}'] = run_pair(root, n, args.devices_per_process, args.timeout, pixels)
      print(json.dumps({f'processes_{n}': report[f'processes_{n}']}), flush=True)
    if args.kill:
      if f'ref{2 * args.devices_per_process}' not in os.listdir(root):
        run_pair(root, 2, args.devices_per_process, args.timeout, pixels)
      report['kill_and_resume'] = run_kill(root, args.devices_per_process, args.timeout)
      print(json.dumps({'kill_and_resume': report['kill_and_resume']}), flush=True)
  finally:
    if not args.workdir:
      shutil.rmtree(root, ignore_errors=True)
  report['seconds'] = round(time.time() - t0, 1)
  report['ok'] = all(v['ok'] for k, v in report.items() if isinstance(v, dict))
  print(json.dumps({'ok': report['ok'], 'seconds': report['seconds']}), flush=True)
  return report


if __name__ == '__main__':
  sys.exit(0 if main()['ok'] else 1)
