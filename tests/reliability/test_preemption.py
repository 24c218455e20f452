"""Stopping safely: a workdir of another config, unknown fields, one-line errors from
`jaxseg.main`, non-finite metrics of any method (generic on the metrics dict), skipping them."""
import json
import os
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import run_module
from jaxseg.config_files import load_config
from jaxseg.configlib import ConfigError
from jaxseg.methods.base import Method
from jaxseg.runner import loop, preemption
from jaxseg.training.progress import Progress
from jaxseg.training.state import TrainState


def _workdir_of(tmp_path, config):
  os.makedirs(tmp_path / 'checkpoints' / '10')
  (tmp_path / 'config.json').write_text(config.to_json_best_effort(indent=1))
  return str(tmp_path)


def test_workdir_of_another_config_names_the_differing_fields(tmp_path):
  saved = load_config('configs/deeplabv2.py:smoke')
  workdir = _workdir_of(tmp_path, saved)
  now = load_config('configs/deeplabv2.py:smoke')
  now.model.output_stride = 16
  now.optimizer.learning_rate = 0.5
  now.log_every_steps = 7  # logging only: may differ on resume
  with pytest.raises(ConfigError) as info:
    preemption.check_resume_config(now, workdir)
  text = str(info.value)
  assert 'config.model.output_stride: 8 -> 16' in text
  assert f'config.optimizer.learning_rate: {saved.optimizer.learning_rate!r} -> 0.5' in text
  assert 'log_every_steps' not in text and 'different config' in text
  logging_only = load_config('configs/deeplabv2.py:smoke')
  logging_only.log_every_steps = 7
  preemption.check_resume_config(logging_only, workdir)  # no error


def test_other_method_in_the_workdir(tmp_path):
  workdir = _workdir_of(tmp_path, load_config('configs/ctkt.py:dsr_only,smoke'))
  with pytest.raises(ConfigError, match=r"config.method: 'ctkt' -> 'deeplabv2'"):
    preemption.check_resume_config(load_config('configs/deeplabv2.py:smoke'), workdir)


def test_unknown_override_names_the_nearest_fields(tmp_path):
  out = run_module('jaxseg.main', '--config=configs/deeplabv2.py:smoke', f'--workdir={tmp_path}',
                   '--config.optimizer.learnig_rate=1', timeout=120)
  assert out.returncode == 1 and 'Traceback' not in out.stderr
  assert 'config.optimizer.learnig_rate: no such field' in out.stderr
  assert 'nearest: config.optimizer.learning_rate' in out.stderr


def test_jaxseg_errors_print_one_message_without_traceback(tmp_path):
  args = ('--config=configs/deeplabv2.py:smoke', f'--workdir={tmp_path}', '--mode=eval')
  out = run_module('jaxseg.main', *args, timeout=300)
  assert out.returncode == 1 and 'Traceback' not in out.stderr
  assert 'error: no checkpoint in' in out.stderr and 'JAXSEG_TRACEBACK=1' in out.stderr
  shown = run_module('jaxseg.main', *args, '--config.model.output_stride=5', timeout=300)
  assert shown.returncode == 1 and 'Traceback' not in shown.stderr
  assert 'error: config.model.output_stride=5: must be one of' in shown.stderr


def _flush(metrics_by_step, skip=False):
  writer = types.SimpleNamespace(write_scalars=lambda *a: None)
  pending = [(k, {n: jnp.asarray(v) for n, v in m.items()}) for k, m in metrics_by_step]
  loop._flush_train_metrics(pending, writer, metrics_by_step[-1][0], Progress(0, 10), skip)


def test_any_non_finite_term_stops_with_the_step_and_terms():
  """Generic on the metrics dict: a two-network method's adversarial term counts too."""
  good = {'loss': 1.0, 'loss_seg': 0.9, 'loss_adv': 0.1, 'grad_norm': 2.0}
  bad = {**good, 'loss_adv': np.inf}
  with pytest.raises(loop.NonFiniteLossError,
                     match=r'non-finite loss_adv at step 6; metrics: .*loss_adv inf'):
    _flush([(5, good), (6, bad)])
  with pytest.raises(loop.NonFiniteLossError, match='non-finite grad_norm at step 5'):
    _flush([(5, {**good, 'grad_norm': np.nan})], skip=True)  # not marked skipped: stops


def test_skipped_steps_are_reported_not_raised(capsys):
  good = {'loss': 1.0, 'grad_norm': 2.0, 'skipped': 0.0}
  _flush([(5, good), (6, {'loss': np.nan, 'grad_norm': np.nan, 'skipped': 1.0})], skip=True)
  assert 'step 6: non-finite grad_norm, loss; update skipped' in capsys.readouterr().out


def test_skip_if_nonfinite_keeps_the_previous_state_but_advances_the_step():
  state = TrainState(step=jnp.asarray(4), params={'w': jnp.ones(3)}, batch_stats={},
                     opt_state={'m': jnp.zeros(3)}, rng=jnp.zeros(2, jnp.uint32))
  new = state.replace(step=jnp.asarray(5), params={'w': jnp.full(3, np.nan)},
                      opt_state={'m': jnp.ones(3)})
  method = types.SimpleNamespace(config=ml_collections.ConfigDict({'skip_nonfinite_steps': True}))
  step = jax.jit(lambda s, n, m: Method.skip_if_nonfinite(method, s, n, m))
  kept, metrics = step(state, new, {'loss': jnp.nan, 'grad_norm': jnp.asarray(1.0)})
  assert int(kept.step) == 5 and float(metrics['skipped']) == 1.0
  np.testing.assert_array_equal(kept.params['w'], np.ones(3))
  np.testing.assert_array_equal(kept.opt_state['m'], np.zeros(3))
  fine = new.replace(params={'w': jnp.full(3, 2.0)})
  kept, metrics = step(state, fine, {'loss': jnp.asarray(0.5), 'grad_norm': jnp.asarray(1.0)})
  assert float(metrics['skipped']) == 0.0 and float(kept.params['w'][0]) == 2.0
  off = types.SimpleNamespace(config=ml_collections.ConfigDict({'skip_nonfinite_steps': False}))
  kept, metrics = Method.skip_if_nonfinite(off, state, new, {'loss': jnp.nan})
  assert kept is new and 'skipped' not in metrics  # off: untouched (bit-identical to before)


def test_signal_requests_a_stop_at_the_next_step():
  preemption._requested.clear()  # pylint: disable=protected-access
  preemption._handler(15, None)  # pylint: disable=protected-access
  try:
    with pytest.raises(preemption.Preempted) as info:
      preemption.raise_if_requested(7)
    assert info.value.signal_name == 'SIGTERM' and info.value.step == 7
    assert isinstance(info.value, KeyboardInterrupt)  # the loop's save-on-interrupt path
    with pytest.raises(KeyboardInterrupt, match='second stop signal'):
      preemption._handler(15, None)  # pylint: disable=protected-access
  finally:
    preemption._requested.clear()  # pylint: disable=protected-access
  json.dumps(preemption.RESUME_FREE_FIELDS)
