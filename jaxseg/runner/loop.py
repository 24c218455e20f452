"""The one train / eval / predict loop every method reuses.

    train_and_evaluate(config, workdir)   train with periodic eval + checkpoints, auto-resume
    evaluate(config, workdir)             evaluate the latest checkpoint
    predict(config, workdir)              write side-by-side prediction PNGs

A method (jaxseg.methods) supplies model, losses and pure steps; this module owns the mesh,
the input pipeline, checkpoints, metric writing and the progress line.
"""
import dataclasses
import os
import time

import jax
import numpy as np
from absl import logging

from jaxseg import methods, viz
from jaxseg.runner import config_checks, preemption
from jaxseg.runner.predict_files import predict_files
from jaxseg.methods.base import Method
from jaxseg.data import pipeline, sources
from jaxseg.training import parallel
from jaxseg.training.checkpoint import Checkpointer
from jaxseg.training.progress import Progress
from jaxseg.training.writer import MetricWriter


# The second training source's data order and augmentation use seed + this offset.
SECOND_SOURCE_SEED_OFFSET = 7919


class NonFiniteLossError(FloatingPointError):
  """A train step produced a non-finite loss; the last good checkpoint is kept."""


@dataclasses.dataclass
class Setup:
  """Everything built from a config before the first step."""
  method: Method
  mesh: jax.sharding.Mesh
  train_source: object
  val_source: object
  second_source: object  # the method's `second_train_source` (None for most methods)
  state: object
  checkpointer: Checkpointer


def _print(msg: str):
  """Console line on process 0 (other hosts only log)."""
  if jax.process_index() == 0:
    print(msg, flush=True)
  else:
    logging.info(msg)


def _write_text_atomic(path: str, text: str):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(tmp, path)


def setup(config, workdir: str) -> Setup:
  """Validates the config, builds data, method, mesh, initial (or restored) state."""
  config_checks.validate(config)
  train_source = sources.make_source(config.dataset, 'train')
  val_source = sources.make_source(config.dataset, 'val')
  method = methods.build_method(config, train_source.meta)
  second = method.second_train_source
  second_source = sources.make_source(config.dataset[second], 'train') if second else None
  mesh = parallel.make_mesh(config.get('num_devices', None))
  checkpointer = Checkpointer(workdir, max_to_keep=config.keep_checkpoints)
  example = method.eval_transform()(val_source[0])
  example = {k: v[None] for k, v in example.items()}
  init = jax.jit(method.init_state, out_shardings=parallel.replicated(mesh))
  state = init(jax.random.PRNGKey(config.seed), example)
  if checkpointer.latest_step() is not None:
    state = checkpointer.restore(state)
  else:
    state = method.initialize_from_config(state)
  return Setup(method, mesh, train_source, val_source, second_source, state, checkpointer)


def _evaluate(s: Setup, config, eval_fn) -> tuple[dict, str, dict]:
  """-> (scalars, report, the split's summed eval_step outputs as NumPy, e.g. 'confusion')."""
  pidx, pcount = jax.process_index(), jax.process_count()
  batches = pipeline.eval_batches(s.val_source, s.method.eval_transform(),
                                  config.eval_batch_size, pidx, pcount,
                                  limit=config.get('num_eval_examples', 0) or None)
  total = None
  for batch in batches:
    sums = eval_fn(s.state, parallel.put_batch(batch, s.mesh))
    total = sums if total is None else jax.tree.map(np.add, total, sums)
    total = jax.device_get(total)
  return (*s.method.summarize(total), total)


def _report_eval(writer, workdir, step, scalars, report, sums):
  writer.write_scalars(step, 'val', scalars)
  writer.write_text(step, 'val/report', report)
  if jax.process_index() == 0:
    _write_text_atomic(os.path.join(workdir, 'eval', f'step_{step:07d}.txt'), report)
    _write_text_atomic(os.path.join(workdir, 'eval', 'latest.txt'), report)
    # The exact sums ('confusion', 'depth/abs_rel', ...) beside the report, to compare runs.
    path = os.path.join(workdir, 'eval', f'step_{step:07d}_sums.npz')
    flat = {'/'.join(str(getattr(k, 'key', getattr(k, 'idx', k))) for k in keys): np.asarray(v)
            for keys, v in jax.tree_util.tree_flatten_with_path(sums)[0]}
    with open(f'{path}.tmp{os.getpid()}', 'wb') as f:
      np.savez(f, **flat)
    os.replace(f'{path}.tmp{os.getpid()}', path)
  _print(f'eval at step {step}:\n{report}')


def _flush_train_metrics(pending, writer, step, progress, skip_nonfinite=False):
  """Averages pending step metrics, raises on any non-finite metric, writes them.

  With `skip_nonfinite` (config.skip_nonfinite_steps), a step whose update was skipped
  (metric `skipped` = 1, see `Method.optimizer_step`) is reported and left out of the mean.
  """
  if not pending:
    return
  fetched, kept = jax.device_get([m for _, m in pending]), []
  for (k, _), m in zip(pending, fetched):
    bad = preemption.nonfinite_terms(m)
    if bad and not (skip_nonfinite and float(m.get('skipped', 0)) == 1):
      raise NonFiniteLossError(f'non-finite {", ".join(bad)} at step {k}; metrics: '
                               f'{preemption.describe(m)}')
    if bad:
      _print(f'step {k}: non-finite {", ".join(bad)}; update skipped '
             f'(config.skip_nonfinite_steps)')
    else:
      kept.append(m)
  if not kept:
    pending.clear()
    return
  mean = {n: float(np.mean([m[n] for m in kept])) for n in kept[0]}
  line = progress.update(step)
  mean['steps_per_sec'] = progress.steps_per_sec
  writer.write_scalars(step, 'train', mean)
  _print(f'{line} | loss {mean["loss"]:.4f}')
  pending.clear()


def train_and_evaluate(config, workdir: str):
  """Trains `config.num_train_steps` steps (resuming from `workdir`), evaluating periodically."""
  preemption.check_resume_config(config, workdir)
  s = setup(config, workdir)
  skip = bool(config.get('skip_nonfinite_steps', False))
  writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
  if jax.process_index() == 0:
    _write_text_atomic(os.path.join(workdir, 'config.json'), config.to_json_best_effort(indent=1))
  writer.write_hparams(config.to_dict())
  start = int(jax.device_get(s.state.step))
  total = config.num_train_steps
  _print(f'training {config.method}/{config.model.name} on {config.dataset.name}: steps '
         f'{start}..{total}, global batch {config.batch_size}, {s.mesh.size} device(s), '
         f'workdir {os.path.abspath(workdir)}')
  train_fn = parallel.jit_step(s.method.train_step, s.mesh)
  eval_fn = parallel.jit_eval(s.method.eval_step, s.mesh)
  batches = pipeline.TrainBatches(s.train_source, s.method.train_transform(), config.batch_size,
                                  config.seed, jax.process_index(), jax.process_count())
  if s.second_source is not None:  # e.g. domain adaptation: one source + one target batch
    second = pipeline.TrainBatches(s.second_source, s.method.second_train_transform(),
                                   config.batch_size, config.seed + SECOND_SOURCE_SEED_OFFSET,
                                   jax.process_index(), jax.process_count())
    batches = pipeline.MergedBatches({'source': batches, s.method.second_train_source: second})
  iterator = batches.iterate(start, total, num_threads=config.data_threads)
  progress = Progress(start, total)
  pending = []
  step = start
  try:
    for step in range(start + 1, total + 1):
      batch = parallel.put_batch(next(iterator), s.mesh)
      s.state, metrics = train_fn(s.state, batch)
      pending.append((step, metrics))
      if step == start + 1:  # exclude compilation from steps/s
        jax.block_until_ready(metrics)
        progress = Progress(start, total)
        _print(f'first step done (compiled) at step {step}')
      if step % config.log_every_steps == 0 or step == total:
        _flush_train_metrics(pending, writer, step, progress, skip)
      if step % config.checkpoint_every_steps == 0 or step == total:
        _flush_train_metrics(pending, writer, step, progress, skip)
        t = time.perf_counter()
        s.checkpointer.save(step, s.state)
        progress.pause(time.perf_counter() - t)
      if config.eval_every_steps and step % config.eval_every_steps == 0 and step != total:
        t = time.perf_counter()
        _report_eval(writer, workdir, step, *_evaluate(s, config, eval_fn))
        progress.pause(time.perf_counter() - t)
      preemption.raise_if_requested(step)
    # Final eval (also when a restart finds training already complete).
    scalars, report, sums = _evaluate(s, config, eval_fn)
    _report_eval(writer, workdir, total, scalars, report, sums)
    return scalars
  except KeyboardInterrupt:
    done = int(jax.device_get(s.state.step))  # the interrupt may come before this step ran
    _print(f'interrupted after step {done}; saving a checkpoint so the same command resumes')
    _flush_train_metrics([p for p in pending if p[0] <= done], writer, done, progress, skip)
    if s.checkpointer.latest_step() != done:
      s.checkpointer.save(done, s.state, force=True)
    raise
  except NonFiniteLossError as e:
    raise NonFiniteLossError(f'{e}. Training stopped; the last good checkpoint '
                             f'(step {s.checkpointer.latest_step()}) is kept in '
                             f'{s.checkpointer.directory}') from None
  finally:
    s.checkpointer.close()
    writer.close()


def evaluate(config, workdir: str):
  """Evaluates the latest checkpoint in `workdir` on the validation split."""
  s = setup(config, workdir)
  step = s.checkpointer.latest_step()
  if step is None and config.get('init_from', ''):
    step = 0  # evaluate the weights of config.init_from (e.g. a released checkpoint)
    _print(f'no checkpoint in {s.checkpointer.directory}: evaluating {config.init_from}')
  elif step is None:
    raise FileNotFoundError(f'no checkpoint in {s.checkpointer.directory}; train first '
                            f'(--mode=train), point --workdir at a trained run, or name '
                            f'weights with --config.init_from')
  eval_fn = parallel.jit_eval(s.method.eval_step, s.mesh)
  scalars, report, sums = _evaluate(s, config, eval_fn)
  writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
  _report_eval(writer, workdir, step, scalars, report, sums)
  writer.close()
  s.checkpointer.close()
  return scalars


def predict(config, workdir: str):
  """Writes `config.predict.num_examples` side-by-side PNGs to `<workdir>/predictions`, or with
  `config.predict.input` (a folder or glob) palette PNGs + overlays of those images."""
  s = setup(config, workdir)
  if s.checkpointer.latest_step() is None:
    logging.warning('no checkpoint in %s: predicting with the initial weights',
                    s.checkpointer.directory)
  out_dir = os.path.join(workdir, 'predictions')
  if config.predict.get('input', ''):
    try:
      return predict_files(s.method, s.state, config, out_dir)
    finally:
      s.checkpointer.close()
  predict_fn = jax.jit(s.method.predict_step)
  transform = s.method.eval_transform()
  n = min(config.predict.num_examples, len(s.val_source))
  paths = []
  for i in range(n):
    raw = s.val_source[i]
    example = transform(raw)
    pred = jax.device_get(predict_fn(s.state, {k: v[None] for k, v in example.items()}))
    pred = {k: v[0] for k, v in pred.items()}
    panel = s.method.render(example, pred, raw['image'])
    path = os.path.join(out_dir, f'{i:04d}.png')
    if jax.process_index() == 0:
      viz.save_png(path, panel)
    paths.append(path)
  _print(f'wrote {len(paths)} prediction images to {out_dir}')
  s.checkpointer.close()
  return paths
