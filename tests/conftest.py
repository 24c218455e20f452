"""Shared test setup: CPU only, a shared compilation cache, the optional real-data folder."""
import os
import pathlib
import subprocess
import sys
import tempfile

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# One persistent compilation cache for the session, its xdist workers and the `jaxseg.main`
# subprocesses the tests start (they inherit the environment): a resumed run, an eval or a
# predict after a train then loads the executables instead of compiling them again. Keyed by
# the HLO, compile options and jax version, so it never serves a stale executable.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR',
                      os.path.join(tempfile.gettempdir(), f'jaxseg-tests-jax-cache-{os.getuid()}'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '-1')

import pytest  # pylint: disable=g-import-not-at-top

from jaxseg.configlib import set_field  # pylint: disable=g-import-not-at-top,unused-import  (tests/methods/test_dsr.py imports it from here)

REPO = pathlib.Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / 'shared' / 'realdata'


@pytest.fixture
def realdata():
  """Path of ../shared/realdata; skips the test when the folder is absent."""
  if not REALDATA.is_dir():
    pytest.skip(f'real data samples not present at {REALDATA}')
  return REALDATA


@pytest.fixture(scope='module')
def fast_compile():
  """XLA's cheap compiles (most optimisations off) for a test module that checks values, not
  speed, of tiny models; restored afterwards. Use: pytestmark = usefixtures('fast_compile')."""
  import jax  # pylint: disable=g-import-not-at-top
  old = jax.config.read('jax_disable_most_optimizations')
  jax.config.update('jax_disable_most_optimizations', True)
  yield
  jax.config.update('jax_disable_most_optimizations', old)


def run_module(module: str, *args, timeout: int = 600) -> subprocess.CompletedProcess:
  """`python -m module *args` from the repository root, CPU only, output captured. Toy-sized
  end-to-end runs: XLA's optimisation passes cost more than they save (JAX's cheap compiles)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO),
             JAX_DISABLE_MOST_OPTIMIZATIONS='1')
  return subprocess.run([sys.executable, '-m', module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout, check=False)


def np_variables(module, *args, seed=0, **kwargs):
  """Variables with module's shapes from NumPy (no JAX RNG compile): BN scale/var 1, mean 0,
  kernels He-normal, other parameters N(0, 0.1)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a, **kwargs), *args)
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = path[-1].key
    if name in ('scale', 'var'):
      return jnp.ones(s.shape, s.dtype)
    if name == 'mean':
      return jnp.zeros(s.shape, s.dtype)
    scale = np.sqrt(2.0 / max(int(np.prod(s.shape[:-1])), 1)) if name == 'kernel' else 0.1
    return jnp.asarray(rng.normal(0.0, scale, s.shape), s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)
