"""jaxseg entry point: a config and a mode, nothing else.

  python -m jaxseg.main --config=configs/deeplabv2.py --workdir=runs/deeplabv2 [--mode=eval]
  python -m jaxseg.main --config=configs/deeplabv2.py:smoke --workdir=/tmp/smoke --config.batch_size=4

Multi-process: set JAXSEG_DISTRIBUTED=1 (or pass --distributed) to call
jax.distributed.initialize() first (SLURM / Cloud TPU auto-detect), or JAXSEG_COORDINATOR,
JAXSEG_NUM_PROCESSES, JAXSEG_PROCESS_ID to name the job (jaxseg/runner/distributed.py, launch/).

Errors that jaxseg raises itself (a bad config field, a missing or corrupt dataset file, no
checkpoint, a non-finite loss...) print as one `error:` message and exit with status 1;
JAXSEG_TRACEBACK=1 shows the traceback too. SIGTERM / SIGINT / SIGUSR1 save a checkpoint of
the current step and exit with status 128 + the signal number (the same command resumes).
"""
import os
import re
import signal
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxseg.config_files import load_config
from jaxseg.configlib import ConfigError
from jaxseg.runner import preemption
from jaxseg.runner.errors import raised_by_jaxseg

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path[:arg]).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs, outputs.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict'], 'What to run.')
_DISTRIBUTED = flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize().')
flags.mark_flags_as_required(['config', 'workdir'])

TRACEBACK_ENV = 'JAXSEG_TRACEBACK'


def _fail(message: str, code: int = 1):
  hint = '' if os.environ.get(TRACEBACK_ENV) else f'  ({TRACEBACK_ENV}=1 shows the traceback)'
  print(f'error: {message}\n{hint}'.rstrip(), file=sys.stderr, flush=True)
  sys.exit(code)


def _config_overrides(argv):
  """(config spec, [dotted override paths]) from the command line."""
  spec, paths = None, []
  for arg in argv[1:]:
    match = re.match(r'--config(?:\.([\w.]+))?(?:=(.*))?$', arg)
    if match and match.group(1):
      paths.append(match.group(1))
    elif match and match.group(2) is not None:
      spec = match.group(2)
  return spec, paths


def _unknown_override(argv) -> str | None:
  """The message for the first `--config.<path>` that names no field, if any."""
  spec, paths = _config_overrides(argv)
  if spec is None:
    return None
  try:
    preemption.check_field_paths(load_config(spec), paths)
  except ConfigError as e:
    return str(e)
  return None


def parse_flags(argv):
  """absl flag parsing whose config errors (an unknown `--config.` field, a ConfigError of
  the config file) print one message instead of a traceback from inside ml_collections."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'FATAL Flags parsing error: {e}\nPass --helpshort or --helpfull to see help on flags.',
          file=sys.stderr)
    sys.exit(1)
  except ConfigError as e:
    _fail(str(e))
  except (AttributeError, KeyError) as e:
    try:
      message = _unknown_override(argv)
    except Exception:  # pylint: disable=broad-except
      message = None
    if message is None or os.environ.get(TRACEBACK_ENV):
      raise
    _fail(message)
  return None  # unreachable


def _run(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from jaxseg.runner import distributed  # pylint: disable=g-import-not-at-top
  distributed.maybe_initialize(_DISTRIBUTED.value)  # before anything touches a device
  import jax  # pylint: disable=g-import-not-at-top
  from jaxseg.runner import loop  # pylint: disable=g-import-not-at-top
  logging.info('process %d/%d, local devices: %s', jax.process_index(), jax.process_count(),
               jax.local_devices())
  run = {'train': loop.train_and_evaluate, 'eval': loop.evaluate, 'predict': loop.predict}
  try:
    run[_MODE.value](_CONFIG.value, _WORKDIR.value)
  except preemption.Preempted as e:
    print(f'stopped by {e.signal_name} after step {e.step}; its checkpoint is in '
          f'{os.path.abspath(_WORKDIR.value)}/checkpoints: run the same command to resume',
          flush=True)
    sys.exit(128 + int(getattr(signal, e.signal_name)))
  except KeyboardInterrupt:
    print('interrupted; run the same command to resume from the last checkpoint', flush=True)
    sys.exit(128 + signal.SIGINT)
  except Exception as e:  # pylint: disable=broad-except
    if os.environ.get(TRACEBACK_ENV) or not raised_by_jaxseg(e):
      raise
    _fail(str(e))


def main():
  preemption.install_signal_handlers()  # first: a stop signal during start-up is kept too
  app.run(_run, flags_parser=parse_flags)


if __name__ == '__main__':
  main()
