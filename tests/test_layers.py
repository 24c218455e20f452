"""The layer contract (.importlinter: imports only point down, no cycles between sibling modules)
holds, and jaxseg/ imports inside functions only optional heavy dependencies."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip('importlinter', reason='the layer contract is checked with import-linter')

# Function-local imports allowed in jaxseg/: optional or heavy dependencies that most runs do not
# need, and the modules that import them at their top.
LAZY_OK = ('torch', 'tensorboardX', 'scipy', 'h5py', 'pydensecrf',
           'jaxseg.bench.torch_deeplabv2', 'jaxseg.bench.torch_padnet_bench',  # import torch
           'jaxseg.data.builders')  # imports tensorflow_datasets
# jaxseg.main: jax.distributed.initialize() must run before anything touches a JAX backend.
LAZY_OK_IN = {'jaxseg/main.py': ('jax', 'jaxseg.runner')}


def test_import_contract_holds():
  out = subprocess.run([sys.executable, '-c', 'import sys; from importlinter.cli import '
                        'lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))'],
                       cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                       capture_output=True, text=True, timeout=300, check=False)
  assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
  assert 'Contracts: 2 kept, 0 broken.' in out.stdout, out.stdout[-2000:]


def _local_imports(tree):
  """(line, dotted name) of everything imported inside a function (`from a import b`: a.b)."""
  for fn in ast.walk(tree):
    if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
      for node in ast.walk(fn):
        if isinstance(node, ast.Import):
          yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
          yield from ((node.lineno, f'{node.module}.{a.name}') for a in node.names)


def test_function_local_imports_are_optional_heavy_dependencies_only():
  bad = []
  for path in sorted((REPO / 'jaxseg').rglob('*.py')):
    rel = path.relative_to(REPO).as_posix()
    allowed = LAZY_OK + LAZY_OK_IN.get(rel, ())
    for line, module in _local_imports(ast.parse(path.read_text())):
      if not any(module == a or module.startswith(a + '.') for a in allowed):
        bad.append(f'{rel}:{line}: import {module}')
  assert not bad, 'function-local imports (put them at the top):\n' + '\n'.join(bad)
