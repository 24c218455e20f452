"""One metric writer: TensorBoard event files (tensorboardX, no TensorFlow) + metrics.jsonl.

Only process 0 writes; other hosts get a writer that only logs.
"""
import json
import os
import time
from typing import Mapping

import numpy as np
from absl import logging


class MetricWriter:
  """Writes scalars to TensorBoard and one JSON object per (step, split) to metrics.jsonl."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self._tb = None
    self._jsonl = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(logdir=os.path.join(workdir, 'tensorboard'))
      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a', encoding='utf-8')

  def write_scalars(self, step: int, split: str, scalars: Mapping[str, float]):
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    if not self.enabled:
      logging.info('[%s] step %d: %s', split, step, clean)
      return
    for k, v in clean.items():
      self._tb.add_scalar(f'{split}/{k}', v, step)
    self._jsonl.write(json.dumps({'step': int(step), 'split': split, 'time': time.time(),
                                  'metrics': clean}) + '\n')
    self._jsonl.flush()

  def write_text(self, step: int, tag: str, text: str):
    if self.enabled:
      self._tb.add_text(tag, f'```\n{text}\n```', step)

  def write_image(self, step: int, tag: str, image: np.ndarray):
    """image: (H, W, 3) uint8."""
    if self.enabled:
      self._tb.add_image(tag, image, step, dataformats='HWC')

  def write_hparams(self, hparams: Mapping):
    if self.enabled:
      self._tb.add_text('config', f'```\n{json.dumps(hparams, indent=1, default=str)}\n```', 0)

  def flush(self):
    if self.enabled:
      self._tb.flush()
      self._jsonl.flush()

  def close(self):
    if self.enabled:
      self._tb.close()
      self._jsonl.close()
      self.enabled = False
