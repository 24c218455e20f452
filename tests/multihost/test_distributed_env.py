"""How jaxseg.main finds the job it joins: env vars / --distributed -> jax.distributed.initialize."""
import jax
import numpy as np
import pytest

from jaxseg.runner import distributed
from jaxseg.training import parallel


def test_single_process_by_default():
  assert distributed.settings_from_env(False, {}) is None
  assert distributed.settings_from_env(False, {'JAXSEG_DISTRIBUTED': '0'}) is None


@pytest.mark.parametrize('flag,env', [(True, {}), (False, {'JAXSEG_DISTRIBUTED': '1'})])
def test_flag_or_env_without_details_auto_detects(flag, env):
  s = distributed.settings_from_env(flag, env)
  assert s == distributed.DistributedSettings()  # all None: SLURM / TPU / Open MPI detection
  assert s.coordinator_bind_address is None


def test_explicit_job_joins_without_the_switch_and_binds_loopback_to_loopback():
  s = distributed.settings_from_env(False, {
      'JAXSEG_COORDINATOR': '127.0.0.1:4321', 'JAXSEG_NUM_PROCESSES': '4',
      'JAXSEG_PROCESS_ID': '3', 'JAXSEG_HEARTBEAT_TIMEOUT': '7', 'JAXSEG_INIT_TIMEOUT': '60'})
  assert (s.coordinator_address, s.num_processes, s.process_id) == ('127.0.0.1:4321', 4, 3)
  assert (s.heartbeat_timeout_seconds, s.initialization_timeout) == (7, 60)
  assert s.coordinator_bind_address == '127.0.0.1:4321'
  remote = distributed.settings_from_env(False, {'JAXSEG_COORDINATOR': 'node7:4321'})
  assert remote.coordinator_bind_address is None  # JAX's default: every interface
  assert remote.heartbeat_timeout_seconds == 100


@pytest.mark.parametrize('env,message', [
    ({'JAXSEG_NUM_PROCESSES': 'two', 'JAXSEG_PROCESS_ID': '0'}, 'JAXSEG_NUM_PROCESSES=.two'),
    ({'JAXSEG_COORDINATOR': 'h:1', 'JAXSEG_NUM_PROCESSES': '2'}, 'both JAXSEG_NUM_PROCESSES'),
    ({'JAXSEG_COORDINATOR': 'h:1', 'JAXSEG_NUM_PROCESSES': '2', 'JAXSEG_PROCESS_ID': '2'},
     'JAXSEG_PROCESS_ID=2 must be < JAXSEG_NUM_PROCESSES=2'),
    ({'JAXSEG_NUM_PROCESSES': '2', 'JAXSEG_PROCESS_ID': '1'}, 'need JAXSEG_COORDINATOR'),
    ({'JAXSEG_COORDINATOR': 'node7'}, 'must be host:port'),
    ({'JAXSEG_DISTRIBUTED': '1', 'JAXSEG_HEARTBEAT_TIMEOUT': '0'}, 'HEARTBEAT_TIMEOUT=0 must'),
])
def test_bad_settings_name_the_variable(env, message):
  with pytest.raises(ValueError, match=message):
    distributed.settings_from_env(False, env)


def test_initialize_passes_the_settings_to_jax(monkeypatch):
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda **kw: calls.append(kw))
  for k in ('JAXSEG_DISTRIBUTED', 'JAXSEG_HEARTBEAT_TIMEOUT', 'JAXSEG_INIT_TIMEOUT'):
    monkeypatch.delenv(k, raising=False)
  monkeypatch.setenv('JAXSEG_COORDINATOR', '127.0.0.1:999')
  monkeypatch.setenv('JAXSEG_NUM_PROCESSES', '2')
  monkeypatch.setenv('JAXSEG_PROCESS_ID', '1')
  distributed.maybe_initialize(False)
  assert calls == [dict(coordinator_address='127.0.0.1:999', num_processes=2, process_id=1,
                        coordinator_bind_address='127.0.0.1:999', heartbeat_timeout_seconds=100,
                        initialization_timeout=300)]
  for k in ('JAXSEG_COORDINATOR', 'JAXSEG_NUM_PROCESSES', 'JAXSEG_PROCESS_ID'):
    monkeypatch.delenv(k)
  assert distributed.maybe_initialize(False) is None and len(calls) == 1


def test_parallel_refuses_what_a_multi_process_job_cannot_shard(monkeypatch):
  mesh = parallel.make_mesh()
  batch = parallel.put_batch({'image': np.zeros((3, 2))}, mesh)  # 1 device: any size splits
  assert batch['image'].shape == (3, 2)
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  if len(jax.devices()) > 1:
    with pytest.raises(ValueError, match='config.num_devices=1: a multi-process job'):
      parallel.make_mesh(1)
  monkeypatch.setattr(parallel, 'batch_sharded', lambda m: _FakeSharding(2))
  with pytest.raises(ValueError, match=r"batch\['image'\]: this process's slice of 3 examples"):
    parallel.put_batch({'image': np.zeros((3, 2))}, mesh)


class _FakeSharding:
  def __init__(self, n):
    self.addressable_devices = list(range(n))
