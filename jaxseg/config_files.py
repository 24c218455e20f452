"""Loads `configs/<method>.py[:arg]` outside absl (tests, benchmarks, notebooks)."""
import importlib.util
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(spec: str):
  """`'configs/deeplabv2.py:smoke'` -> ConfigDict (paths relative to the repo root work too)."""
  path, _, arg = spec.partition(':')
  if not os.path.exists(path):
    path = os.path.join(REPO_ROOT, path)
  if not os.path.exists(path):
    raise FileNotFoundError(f'config file {spec!r} not found')
  module_spec = importlib.util.spec_from_file_location(
      f'jaxseg_config_{os.path.basename(path)[:-3]}', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)
