"""The one train loop: resume is bit-identical, Ctrl-C saves, non-finite loss stops cleanly."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.config_files import load_config
from jaxseg.data import pipeline
from jaxseg.methods.segmentation import SegmentationMethod
from jaxseg.runner import loop
from jaxseg.training.checkpoint import Checkpointer


def tiny_config(steps=4):
  c = load_config('configs/deeplabv2.py:smoke')
  c.num_train_steps = steps
  c.log_every_steps = 1
  c.eval_every_steps = 0
  c.checkpoint_every_steps = 2
  c.dataset.num_val = 2
  c.dataset.image_size = (33, 33)
  c.dataset.augment.crop_size = (33, 33)
  c.model.msc = False
  return c


def final_state(workdir, config):
  s = loop.setup(config, workdir)
  s.checkpointer.close()
  return jax.device_get(s.state)


def interrupt_after(monkeypatch, n):
  original = pipeline.TrainBatches.iterate

  def iterate(self, start, end, **kw):
    it = original(self, start, end, **kw)
    for i, b in enumerate(it):
      if i == n:
        raise KeyboardInterrupt
      yield b
  monkeypatch.setattr(pipeline.TrainBatches, 'iterate', iterate)


def test_resume_after_interrupt_is_bit_identical(tmp_path, monkeypatch):
  config = tiny_config(steps=4)
  straight = str(tmp_path / 'straight')
  loop.train_and_evaluate(config, straight)

  resumed = str(tmp_path / 'resumed')
  with monkeypatch.context() as m:
    interrupt_after(m, 3)  # Ctrl-C while fetching the 4th batch
    with pytest.raises(KeyboardInterrupt):
      loop.train_and_evaluate(config, resumed)
  assert Checkpointer(resumed).latest_step() == 3  # saved on interrupt, off the 2-step cadence
  loop.train_and_evaluate(config, resumed)

  a, b = final_state(straight, config), final_state(resumed, config)
  assert int(a.step) == int(b.step) == 4
  jax.tree.map(np.testing.assert_array_equal, (a.params, a.batch_stats, a.opt_state),
               (b.params, b.batch_stats, b.opt_state))

  records = [json.loads(line) for line in open(os.path.join(straight, 'metrics.jsonl'))]
  train_steps = [r['step'] for r in records if r['split'] == 'train']
  assert train_steps == [1, 2, 3, 4]
  val = [r for r in records if r['split'] == 'val']
  assert val and 'miou' in val[-1]['metrics']
  assert 'mIoU' in open(os.path.join(straight, 'eval', 'latest.txt')).read()
  assert any(f.startswith('events') for f in os.listdir(os.path.join(straight, 'tensorboard')))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
  config = tiny_config(steps=6)
  original = SegmentationMethod.train_step

  def poisoned(self, state, batch):
    new_state, metrics = original(self, state, batch)
    metrics['loss'] = jnp.where(state.step >= 3, jnp.nan, metrics['loss'])  # 4th step diverges
    return new_state, metrics
  monkeypatch.setattr(SegmentationMethod, 'train_step', poisoned)
  workdir = str(tmp_path / 'nan')
  with pytest.raises(loop.NonFiniteLossError, match=r'step 4.*last good checkpoint \(step 2\)'):
    loop.train_and_evaluate(config, workdir)
  assert Checkpointer(workdir).latest_step() == 2


def test_eval_without_checkpoint_says_so(tmp_path):
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    loop.evaluate(tiny_config(), str(tmp_path / 'empty'))
