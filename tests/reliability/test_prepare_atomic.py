"""Data preparation is atomic: killed (SIGKILL) mid-way, it leaves no copy a reader would use;
the next run starts over, cleans the abandoned folder, and an earlier copy stays byte-identical."""
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np

from conftest import REPO
from jaxseg.data import builders
from tests.data.formats import test_gta5 as gta_w

GTA = builders.BUILDERS['gta5']
# Prepares GTA5 from argv[1] into argv[2]; SIGKILLs itself while reading the 2nd example.
_KILLED = textwrap.dedent('''
    import os, signal, sys
    from jaxseg.data import builders
    from jaxseg.data.formats import gta5
    read, seen = gta5.read_example, []
    def dying(entry):
      seen.append(entry)
      if len(seen) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
      return read(entry)
    gta5.read_example = dying
    cls = builders.BUILDERS['gta5']
    builders.prepare(cls, cls.builder_configs['default'], sys.argv[1], sys.argv[2],
                     splits=('all',), threads=1, force=len(sys.argv) > 3)
''')


def _killed_prepare(root, prepared, force=False):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  out = subprocess.run([sys.executable, '-c', _KILLED, str(root), str(prepared),
                        *(['force'] if force else [])], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300, check=False)
  assert out.returncode == -9, out.stderr[-2000:]


def _digest(folder):
  h = hashlib.sha256()
  for base, _, names in sorted(os.walk(folder)):
    for name in sorted(names):
      h.update(name.encode())
      h.update(open(os.path.join(base, name), 'rb').read())
  return h.hexdigest()


def _prepare(root, prepared, force=False):
  return builders.prepare(GTA, GTA.builder_configs['default'], str(root), str(prepared),
                          splits=('all',), threads=1, force=force)


def test_killed_first_preparation_starts_over(tmp_path):
  root, prepared = tmp_path / 'GTA5', tmp_path / 'prepared'
  written = gta_w._write_gta(root)  # pylint: disable=protected-access
  _killed_prepare(root, prepared)
  final = prepared / 'jaxseg_gta5' / 'default' / '1.0.0'
  assert not final.exists()  # nothing a reader would open
  left = [n for n in os.listdir(prepared) if n.startswith('.incomplete')]
  assert len(left) == 1  # the abandoned half-written copy, out of the readers' way
  prep = _prepare(root, prepared)
  assert not prep.reused
  assert not [n for n in os.listdir(prepared) if n.startswith('.incomplete')]  # cleaned
  ds = prep.data_source('all')
  assert len(ds) == 3
  for i, name in enumerate(sorted(written)):
    np.testing.assert_array_equal(GTA.decode(ds[i])['image'], written[name][0])


def test_killed_re_preparation_keeps_the_earlier_copy(tmp_path):
  root, prepared = tmp_path / 'GTA5', tmp_path / 'prepared'
  gta_w._write_gta(root)  # pylint: disable=protected-access
  first = _prepare(root, prepared)
  before = _digest(first.path)
  _killed_prepare(root, prepared, force=True)
  assert _digest(first.path) == before
  again = _prepare(root, prepared)
  assert again.reused and again.path == first.path and len(again.data_source('all')) == 3
