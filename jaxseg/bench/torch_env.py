"""Importing PyTorch (an optional dependency of jaxseg) and the reference command lines' timing
report; nothing here imports torch at import time."""
import importlib.util
import os
import resource
import statistics

OPTIMIZERS = ('sgd', 'adam', 'adamw')  # the optimizers the PyTorch references mirror


def available() -> bool:
  """True when PyTorch can be imported."""
  return importlib.util.find_spec('torch') is not None


def import_torch():
  """Imports torch. Unless set already, OMP_WAIT_POLICY=PASSIVE first: on a loaded machine
  (more runnable threads than cores) libgomp's spinning workers made the step up to 7x slower
  (measured: dilated ResNet-50, batch 2, 129x129 train step 2.4 s passive vs 17 s active, load
  average 7 on 2 cores). Not measured on an idle machine, where active waiting may be a little
  faster: set OMP_WAIT_POLICY yourself to choose."""
  os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
  import torch  # pylint: disable=g-import-not-at-top
  return torch


def time_and_print(bench, warmup: int, steps: int) -> None:
  """The command lines' report: `warmup` untimed steps, then the median of `steps` timed ones."""
  for _ in range(warmup):
    bench.step()
  times = [bench.step() for _ in range(steps)]
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(f'torch {bench.torch.__version__} threads={bench.torch.get_num_threads()} '
        f'params={bench.num_params / 1e6:.2f}M: median {statistics.median(times):.3f} s/step '
        f'(steps {", ".join(f"{t:.3f}" for t in times)}); max RSS {rss:.0f} MB')
