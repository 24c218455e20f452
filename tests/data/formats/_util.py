"""Test helpers for the dataset-format tests."""

import contextlib
import re

import pytest

from jaxseg.data.formats.common import DatasetLayoutError


@contextlib.contextmanager
def layout_error(pattern: str):
  """Expects a DatasetLayoutError whose 'reason: path' line matches `pattern` (re.search).

  Matching that line only (not the expected-layout text printed after it) makes sure the
  error names the offending file.
  """
  with pytest.raises(DatasetLayoutError) as info:
    yield info
  err = info.value
  head = f'{err.reason}: {err.path}'.replace('\\', '/')
  assert re.search(pattern, head), f'{pattern!r} not found in {head!r}'
  assert str(err).startswith(f'{err.reason}: {err.path}')
  assert 'Expected layout:' in str(err)
