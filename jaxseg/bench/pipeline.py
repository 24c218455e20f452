"""Input-pipeline throughput per augmentation recipe, next to the train step's demand.

  python -m jaxseg.bench.pipeline --config=configs/deeplabv2.py:cityscapes \
      --config.dataset.data_dir=/data/cityscapes --recipe=deeplabv2,pspnet --step_time=0.35

For each recipe (default: the config's own `dataset.augment`; names from
`jaxseg.data.recipes.RECIPES`, or `all`) it reports, in examples/s:
  read      `source[i]` alone on one thread (decoding a prepared record, or rendering a scene);
  pipeline  the training batches (`pipeline.TrainBatches.iterate`: read + augment + stack) on
            `--threads` grain threads (default `config.data_threads`);
  demand    config.batch_size / step time, with the step time from `--step_time` (seconds) or
            measured on a batch from this pipeline (`--measure_step`, the config's method, on
            this machine's default JAX device; `python -m jaxseg.bench` gives more detail).
The pipeline keeps up when pipeline >= demand. `--cache=N` serves the first N examples from
memory (for the synthetic scenes, whose rendering is not what a real run pays).
"""
import time

import jax
import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from jaxseg import methods
from jaxseg.data import pipeline, recipes, sources

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (path[:arg]).',
                                          lock_config=False)
_RECIPE = flags.DEFINE_list('recipe', [], 'Recipes from recipes.RECIPES, or "all" '
                            '(default: the config\'s dataset.augment).')
_BATCHES = flags.DEFINE_integer('batches', 10, 'Timed batches per recipe.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed batches first.')
_THREADS = flags.DEFINE_integer('threads', 0, 'Grain threads (0: config.data_threads).')
_STEP_TIME = flags.DEFINE_float('step_time', 0.0, 'Train step time in seconds (demand).')
_MEASURE = flags.DEFINE_bool('measure_step', False, 'Measure the step time on this device.')
_KEYS = flags.DEFINE_string('keys', 'recipe', '"recipe" (what its method reads), "all", or a '
                            'comma-separated list of batch keys.')
_CACHE = flags.DEFINE_integer('cache', 0, 'Serve the first N source examples from memory.')
_CROP = flags.DEFINE_list('crop', [], 'Crop size h,w replacing the recipe\'s.')
flags.mark_flags_as_required(['config'])

# The batch keys the methods of each recipe kind read.
RECIPE_KEYS = {'deeplab': ('image', 'label'), 'pspnet': ('image', 'label'),
               'resize': ('image', 'label'),
               'zoom': ('image', 'label', 'depth', 'valid', 'normals', 'contours'),
               'dsr': ('image', 'depth', 'valid', 'depth_lr', 'depth_lr_up')}


class CachedSource:
  """The first `n` examples of a source, held in memory and repeated."""

  def __init__(self, source, n: int):
    self.items = [source[i] for i in range(min(n, len(source)))]
    self.meta = source.meta

  def __len__(self):
    return len(self.items)

  def __getitem__(self, i):
    return self.items[i]


def read_rate(source, n: int) -> float:
  idx = np.random.default_rng(0).permutation(len(source))[:n]
  t = time.perf_counter()
  for i in idx:
    source[int(i)]
  return len(idx) / (time.perf_counter() - t)


def pipeline_rate(source, transform, batch: int, batches: int, warmup: int, threads: int):
  tb = pipeline.TrainBatches(source, transform, batch, seed=0)
  it = tb.iterate(0, warmup + batches, num_threads=threads, prefetch=2 * threads)
  for _ in range(warmup):
    next(it)
  t = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * batch / (time.perf_counter() - t)


def step_time(config, source) -> float:
  """`--step_time`, or the median of 3 jitted train steps of the config's method on a real
  batch from this pipeline (`--measure_step`), or nan."""
  if _STEP_TIME.value:
    return _STEP_TIME.value
  if not _MEASURE.value:
    return float('nan')
  method = methods.build_method(config, source.meta)
  transform = recipes.make_train_transform(config.dataset.augment, method.batch_keys)
  batch = pipeline.TrainBatches(source, transform, config.batch_size, seed=0)[0]
  state = jax.jit(method.init_state)(jax.random.PRNGKey(0), batch)
  step = jax.jit(method.train_step, donate_argnums=(0,))
  times = []
  for _ in range(4):  # the first call compiles
    t = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t)
  return float(np.median(times[1:]))


def _keys(aug):
  if _KEYS.value == 'all':
    return None
  if _KEYS.value == 'recipe':
    return RECIPE_KEYS[aug.get('recipe', 'deeplab')]
  return tuple(k.strip() for k in _KEYS.value.split(',') if k.strip())


def bench(config, recipe: str | None) -> dict:
  """One table row for `config` with `recipe` (None: the config's own augmentation)."""
  config = ml_collections.ConfigDict(config.to_dict())
  if recipe:
    config.dataset.augment = ml_collections.ConfigDict(recipes.recipe(recipe))
  if _CROP.value:
    config.dataset.augment.crop_size = tuple(int(v) for v in _CROP.value)
  aug = config.dataset.augment
  source = sources.make_source(config.dataset, 'train')
  batch = config.batch_size
  read = read_rate(source, min(len(source), max(4, _BATCHES.value * batch // 2)))
  if _CACHE.value:
    source = CachedSource(source, _CACHE.value)
  threads = _THREADS.value or config.data_threads
  transform = recipes.make_train_transform(aug, _keys(aug))
  step_s = step_time(config, source)
  out = {'recipe': recipe or aug.get('recipe', 'deeplab'), 'dataset': config.dataset.name,
         'batch': batch, 'crop': 'x'.join(map(str, aug.crop_size)), 'read': read,
         'pipeline': pipeline_rate(source, transform, batch, _BATCHES.value, _WARMUP.value,
                                   threads),
         'threads': threads, 'demand': batch / step_s}
  out['headroom'] = out['pipeline'] / out['demand']
  return out


COLUMNS = ('recipe', 'dataset', 'batch', 'crop', 'threads', 'read', 'pipeline', 'demand',
           'headroom')


def format_row(r: dict) -> str:
  return '| ' + ' | '.join(f'{r[c]:.3g}' if isinstance(r[c], float) else str(r[c])
                           for c in COLUMNS) + ' |'


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # TFDS logs every file it opens at INFO
  names = list(recipes.RECIPES) if _RECIPE.value == ['all'] else _RECIPE.value or [None]
  print('| ' + ' | '.join(COLUMNS) + ' |  (examples/s; headroom = pipeline / demand)')
  print('|' + '---|' * len(COLUMNS), flush=True)
  for r in names:
    print(format_row(bench(_CONFIG.value, r)), flush=True)


if __name__ == '__main__':
  app.run(main)
