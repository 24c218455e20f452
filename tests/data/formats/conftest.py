"""Fixtures shared by the dataset-format tests."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
REALDATA = pathlib.Path(os.environ.get('JAXSEG_REALDATA', REPO.parent / 'shared' / 'realdata'))


@pytest.fixture
def real():
  """real('cityscapes/...') -> path of a read-only real sample under ../shared/realdata.

  Skips the test (with the reason) when the folder or the file is absent.
  """
  def get(rel: str) -> pathlib.Path:
    if not REALDATA.is_dir():
      pytest.skip(f'real data samples not found at {REALDATA}')
    path = REALDATA / rel
    if not path.exists():
      pytest.skip(f'real sample {path} not found')
    return path
  return get
