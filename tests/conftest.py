"""Shared test setup: CPU only, small thread pools, the optional real-data folder."""
import os
import pathlib

os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import pytest  # pylint: disable=g-import-not-at-top

REPO = pathlib.Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / 'shared' / 'realdata'


@pytest.fixture
def realdata():
  """Path of ../shared/realdata; skips the test when the folder is absent."""
  if not REALDATA.is_dir():
    pytest.skip(f'real data samples not present at {REALDATA}')
  return REALDATA
