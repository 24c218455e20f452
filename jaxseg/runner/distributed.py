"""Joining a multi-process JAX job before anything touches a device (`jaxseg.main`).

One process per host (TPU VM) or per GPU (SLURM); all run the same command. Settings come from
the environment, so launchers need no extra flags:

    JAXSEG_DISTRIBUTED=1         join a job (the same as `python -m jaxseg.main --distributed`);
                                 with nothing else set JAX auto-detects SLURM / Cloud TPU / Open MPI
    JAXSEG_COORDINATOR=host:port address of process 0's coordination service (any process)
    JAXSEG_NUM_PROCESSES=N       number of processes in the job
    JAXSEG_PROCESS_ID=i          this process, 0 <= i < N
    JAXSEG_HEARTBEAT_TIMEOUT=s   a process silent this long is declared dead and every other
                                 process stops with "tasks are unhealthy ... : <id>" (default 100)
    JAXSEG_INIT_TIMEOUT=s        how long to wait for all processes to connect (default 300)

Setting any of the first three explicitly also joins a job (no JAXSEG_DISTRIBUTED needed). A
loopback coordinator (127.0.0.1 / localhost: several processes on one machine, as in
tests/multihost) also binds the service to loopback only, instead of JAX's default of every
interface.
"""
import dataclasses
import os
from typing import Mapping

import jax

_LOOPBACK_HOSTS = ('127.0.0.1', 'localhost', '[::1]')


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
  """Arguments of jax.distributed.initialize; None = auto-detect (SLURM / TPU / Open MPI)."""
  coordinator_address: str | None = None
  num_processes: int | None = None
  process_id: int | None = None
  heartbeat_timeout_seconds: int = 100
  initialization_timeout: int = 300

  @property
  def coordinator_bind_address(self) -> str | None:
    """Loopback coordinators bind to loopback only; otherwise JAX's default ([::]:port)."""
    if self.coordinator_address is None:
      return None
    host, _ = self.coordinator_address.rsplit(':', 1)
    return self.coordinator_address if host in _LOOPBACK_HOSTS else None


def _int_env(env: Mapping[str, str], name: str, minimum: int) -> int | None:
  raw = env.get(name, '').strip()
  if not raw:
    return None
  try:
    value = int(raw)
  except ValueError:
    raise ValueError(f'{name}={raw!r} is not an integer') from None
  if value < minimum:
    raise ValueError(f'{name}={value} must be >= {minimum}')
  return value


def settings_from_env(flag: bool, env: Mapping[str, str] | None = None
                      ) -> DistributedSettings | None:
  """The job to join, or None for a single-process run. `flag`: `--distributed`."""
  env = os.environ if env is None else env
  coordinator = env.get('JAXSEG_COORDINATOR', '').strip() or None
  num_processes = _int_env(env, 'JAXSEG_NUM_PROCESSES', 1)
  process_id = _int_env(env, 'JAXSEG_PROCESS_ID', 0)
  explicit = (coordinator, num_processes, process_id)
  if not (flag or env.get('JAXSEG_DISTRIBUTED') == '1' or any(v is not None for v in explicit)):
    return None
  if coordinator is not None and ':' not in coordinator:
    raise ValueError(f'JAXSEG_COORDINATOR={coordinator!r} must be host:port')
  if (num_processes is None) != (process_id is None):
    raise ValueError('set both JAXSEG_NUM_PROCESSES and JAXSEG_PROCESS_ID, or neither '
                     f'(got {num_processes=}, {process_id=})')
  if num_processes is not None and process_id >= num_processes:
    raise ValueError(f'JAXSEG_PROCESS_ID={process_id} must be < '
                     f'JAXSEG_NUM_PROCESSES={num_processes}')
  if num_processes is not None and coordinator is None:
    raise ValueError('JAXSEG_NUM_PROCESSES / JAXSEG_PROCESS_ID need JAXSEG_COORDINATOR=host:port')
  return DistributedSettings(
      coordinator, num_processes, process_id,
      heartbeat_timeout_seconds=_int_env(env, 'JAXSEG_HEARTBEAT_TIMEOUT', 1) or 100,
      initialization_timeout=_int_env(env, 'JAXSEG_INIT_TIMEOUT', 1) or 300)


def initialize(settings: DistributedSettings) -> None:
  """jax.distributed.initialize with `settings`; must run before the first device use."""
  jax.distributed.initialize(
      coordinator_address=settings.coordinator_address,
      num_processes=settings.num_processes,
      process_id=settings.process_id,
      coordinator_bind_address=settings.coordinator_bind_address,
      heartbeat_timeout_seconds=settings.heartbeat_timeout_seconds,
      initialization_timeout=settings.initialization_timeout)


def maybe_initialize(flag: bool) -> DistributedSettings | None:
  """Joins the job the environment (or `--distributed`) describes; None when there is none."""
  settings = settings_from_env(flag)
  if settings is not None:
    initialize(settings)
  return settings
