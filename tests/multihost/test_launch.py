"""launch/: shell syntax, the command each script would run (DRY_RUN=1) and its environment."""
import os
import shlex
import subprocess

import pytest

from conftest import REPO
from jaxseg import config_files

SCRIPTS = ('slurm_gpu.sbatch', 'tpu_vm.sh')
ARGS = ['configs/deeplabv2.py:voc', '/shared/runs/voc run', '--config.batch_size=16',
        "--config.init_from=/w/it's.pth"]  # a space and a quote must survive the quoting


def dry_run(script, *args, **env):
  clean = {k: v for k, v in os.environ.items() if not k.startswith('JAXSEG_')}
  out = subprocess.run(['bash', str(REPO / 'launch' / script), *args], capture_output=True,
                       text=True, check=False, timeout=30, env=dict(clean, DRY_RUN='1', **env))
  assert out.returncode == 0, out.stderr
  return dict(line.split(': ', 1) for line in out.stdout.splitlines())


@pytest.mark.parametrize('script', SCRIPTS)
def test_shell_syntax(script):
  out = subprocess.run(['bash', '-n', str(REPO / 'launch' / script)], capture_output=True,
                       text=True, check=False, timeout=30)
  assert out.returncode == 0, out.stderr


def assert_main_command(argv, config, workdir, extra):
  assert argv[:3] == ['python', '-m', 'jaxseg.main']
  assert argv[3:] == [f'--config={config}', f'--workdir={workdir}', *extra]
  config_files.load_config(config)  # the config spec the workers get exists and loads


def test_slurm_runs_one_jaxseg_main_per_task_with_the_distributed_env():
  out = dry_run('slurm_gpu.sbatch', *ARGS)
  argv = shlex.split(out['command'])
  assert argv[:2] == ['srun', '--kill-on-bad-exit=1']
  assert_main_command(argv[2:], ARGS[0], ARGS[1], ARGS[2:])
  assert out['env'].split() == ['JAXSEG_DISTRIBUTED=1', 'JAXSEG_HEARTBEAT_TIMEOUT=100']
  code = [l for l in (REPO / 'launch' / 'slurm_gpu.sbatch').read_text().splitlines()
          if not l.lstrip().startswith('#')]
  assert not any('CUDA_VISIBLE_DEVICES' in l for l in code)  # JAX maps SLURM_LOCALID -> GPU
  assert dry_run('slurm_gpu.sbatch', *ARGS, JAXSEG_HEARTBEAT_TIMEOUT='30')['env'].endswith('=30')
  directives = [l for l in (REPO / 'launch' / 'slurm_gpu.sbatch').read_text().splitlines()
                if l.startswith('#SBATCH')]
  assert '#SBATCH --ntasks-per-node=8' in directives and '#SBATCH --gpus-per-node=8' in directives


@pytest.mark.parametrize('setup', ['0', '1'])
def test_tpu_vm_runs_the_same_command_on_every_worker(setup):
  out = dry_run('tpu_vm.sh', 'my-tpu', 'us-central2-b', *ARGS, SETUP=setup)
  argv = shlex.split(out['command'])
  assert argv[:9] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'my-tpu', '--zone',
                      'us-central2-b', '--worker=all']
  assert argv[9] == '--command' and argv[10] == out['worker command'] and len(argv) == 11
  steps = [shlex.split(s) for s in out['worker command'].split(' && ')]  # as the worker's shell
  assert steps[0] == ['cd', '~/jaxseg']
  if setup == '1':
    assert steps[1] == ['pip', 'install', '-q', '-e', '.', 'jax[tpu]']
  env, main = steps[-1][:2], steps[-1][2:]
  assert env == ['JAXSEG_DISTRIBUTED=1', 'JAXSEG_HEARTBEAT_TIMEOUT=100']
  assert_main_command(main, ARGS[0], ARGS[1], ARGS[2:])
  assert len(steps) == (3 if setup == '1' else 2)


@pytest.mark.parametrize('script,nargs', [('slurm_gpu.sbatch', 2), ('tpu_vm.sh', 4)])
def test_missing_arguments_print_the_usage(script, nargs):
  out = subprocess.run(['bash', str(REPO / 'launch' / script), *ARGS[:nargs - 1]],
                       capture_output=True, text=True, check=False, timeout=30,
                       env=dict(os.environ, DRY_RUN='1'))
  assert out.returncode != 0 and 'usage:' in out.stderr
