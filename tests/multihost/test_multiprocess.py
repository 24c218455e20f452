"""2 and 4 real `jaxseg.main` processes on localhost vs one process on as many devices.

Costs several minutes of CPU (each process compiles the step), over the suite's budget, so it
runs only when asked:

    JAXSEG_MULTIPROCESS_TESTS=1 python -m pytest -q -p no:xdist tests/multihost/test_multiprocess.py
    python -m jaxseg.tools.multiprocess_check          # the same checks, a JSON report
"""
import os

import pytest

from jaxseg.tools import multiprocess_check

pytestmark = pytest.mark.skipif(
    os.environ.get('JAXSEG_MULTIPROCESS_TESTS') != '1',
    reason='multi-process runs take minutes: set JAXSEG_MULTIPROCESS_TESTS=1 '
           '(or run python -m jaxseg.tools.multiprocess_check)')


@pytest.fixture(scope='module')
def report(tmp_path_factory):
  root = tmp_path_factory.mktemp('multiprocess')
  return multiprocess_check.main(['--processes=2,4', f'--workdir={root}', '--timeout=900'])


@pytest.mark.parametrize('n', [2, 4])
def test_matches_one_process_on_as_many_devices(report, n):
  r = report[f'processes_{n}']
  assert r['dist_codes'] == [0] * n and r['ref_codes'] == [0], r.get('log_tail')
  assert r['losses_ok'] and r['params_ok'], r
  assert r['confusion_equal'] and r['confusion_counts_each_pixel_once'], r


@pytest.mark.parametrize('n', [2, 4])
def test_writers_and_sockets(report, n):
  r = report[f'processes_{n}']
  assert r['writers_ok'], r  # one TensorBoard file, unduplicated jsonl, every Orbax shard
  assert r['loopback_only'], r
  if n == 2:
    assert r['predict_codes'] == [0, 0] and r['prediction_images'] == ['0000.png', '0001.png']


def test_a_dead_process_stops_the_job_and_it_resumes(report):
  r = report['kill_and_resume']
  assert r['killed_running'] and r['survivor_code'] not in (0, None), r
  assert r['survivor_exit_seconds'] < r['bound_seconds'] and r['message_names_process_1'], r
  assert r['resumed_from'] == multiprocess_check.CHECKPOINT_EVERY, r
  assert r['resume_codes'] == [0, 0] and r['resume_params_ok'], r
