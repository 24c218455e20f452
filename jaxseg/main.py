"""jaxseg entry point: a config and a mode, nothing else.

  python -m jaxseg.main --config=configs/deeplabv2.py --workdir=runs/deeplabv2 [--mode=eval]
  python -m jaxseg.main --config=configs/deeplabv2.py:smoke --workdir=/tmp/smoke --config.batch_size=4

Multi-process: set JAXSEG_DISTRIBUTED=1 (or pass --distributed) to call
jax.distributed.initialize() first (SLURM / Cloud TPU auto-detect), or JAXSEG_COORDINATOR,
JAXSEG_NUM_PROCESSES, JAXSEG_PROCESS_ID to name the job (jaxseg/runner/distributed.py, launch/).
"""

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path[:arg]).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs, outputs.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict'], 'What to run.')
_DISTRIBUTED = flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize().')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  from jaxseg.runner import distributed  # pylint: disable=g-import-not-at-top
  distributed.maybe_initialize(_DISTRIBUTED.value)  # before anything touches a device
  import jax  # pylint: disable=g-import-not-at-top
  from jaxseg.runner import loop  # pylint: disable=g-import-not-at-top
  logging.info('process %d/%d, local devices: %s', jax.process_index(), jax.process_count(),
               jax.local_devices())
  run = {'train': loop.train_and_evaluate, 'eval': loop.evaluate, 'predict': loop.predict}
  run[_MODE.value](_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
