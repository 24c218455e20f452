"""jit over a 4-device mesh, pmap with an axis name and one device give the same training."""
import json
import os
import subprocess
import sys

from conftest import REPO

# Four devices (one example each) test the cross-device sums as well as eight did, at half the
# cost on a 2-core machine. XLA's cheap compiles: every path is compiled alike, and the check
# compares paths, not speed.
NUM_DEVICES = 4
# Largest parameter-update difference over the scale of the whole update (parallel_check.py):
# measured 2.6e-5 on Intel (4 and 8 devices), ~8e-4 implied by the AMD EPYC report
# (BatchNorm-bias rounding); a loss count not summed over devices gives 0.28 (4 devices; 0.17
# with 8), BatchNorm moments not averaged 0.51 (8 devices).
MAX_UPDATE_ERR = 5e-3
# The same for the running BatchNorm statistics: 4e-7 measured; 0.12 with moments not averaged.
MAX_STATS_ERR = 1e-3


def test_jit_mesh_pmap_and_single_device_agree():
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={NUM_DEVICES}',
             JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO), JAX_DISABLE_MOST_OPTIMIZATIONS='1')
  out = subprocess.run([sys.executable, str(REPO / 'tests/training/parallel_check.py')], env=env,
                       capture_output=True, text=True, timeout=900, check=False)
  assert out.returncode == 0, out.stderr[-4000:]
  r = json.loads(out.stdout.strip().splitlines()[-1])
  (la, lb, lc) = r['losses']
  for x, y, z in zip(la, lb, lc):  # losses are O(1): relative is their scale
    assert abs(x - y) <= 1e-5 * abs(x) and abs(x - z) <= 1e-5 * abs(x), r['losses']
  for key in ('params_jit_vs_single', 'params_pmap_vs_single'):
    assert r[key] < MAX_UPDATE_ERR, (key, r)
  for key in ('stats_jit_vs_single', 'stats_pmap_vs_single'):
    assert r[key] < MAX_STATS_ERR, (key, r)
  assert r['cm_equal'] and r['cm_total'] == r['pixels_expected'], r
