"""Each real-dataset config prepares from a tiny format-exact copy of its publisher's layout
and trains, evaluates and checkpoints through the one train loop (toy model and sizes)."""
import json
import os

import pytest

from jaxseg.config_files import load_config
from jaxseg.runner import loop
from jaxseg.training.checkpoint import Checkpointer

from data.formats import test_cityscapes, test_middlebury, test_nyuv2


pytestmark = pytest.mark.usefixtures('fast_compile')  # tiny models: cheaper XLA compiles


def _shrink(c, tmp_path, crop):
  c.num_train_steps = 2
  c.batch_size = 2
  c.eval_batch_size = 1
  c.log_every_steps = 1
  c.eval_every_steps = 0
  c.checkpoint_every_steps = 2
  c.num_eval_examples = 2
  c.dataset.prepared_dir = str(tmp_path / 'prepared')
  c.dataset.augment.crop_size = crop
  c.model.depth = 14
  c.model.width = 8
  c.predict.num_examples = 1
  return c


def _train_and_check(c, workdir, eval_key):
  loop.train_and_evaluate(c, workdir)
  assert Checkpointer(workdir).latest_step() == 2
  records = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  val = [r for r in records if r['split'] == 'val']
  assert val and eval_key in val[-1]['metrics'], val
  # Prepared once: the tfds ArrayRecord copy is on disk for the next run.
  assert any(f.endswith('.array_record') or 'array_record' in f
             for _, _, files in os.walk(c.dataset.prepared_dir) for f in files)


# ADE20K, VOC, GTA5 and SYNTHIA reach the same loop through the same builders (their readers
# are tested in tests/data/formats, their configs in test_sources); one training run each would
# only add compile time.
def test_padnet_multitask_trains_from_cityscapes_layout(tmp_path):
  """configs/padnet.py:cityscapes: the multi-task model trains on Cityscapes, whose normals and
  contours are derived from disparity + camera and the labels (jaxseg.data.derived). DeepLab v2's
  Cityscapes config reads through the same builder (its config is checked in test_sources)."""
  root = tmp_path / 'cityscapes'
  for split in ('train', 'val'):
    test_cityscapes._write_city(root, split)  # pylint: disable=protected-access
  c = _shrink(load_config('configs/padnet.py:cityscapes'), tmp_path, (12, 16))
  c.dataset.data_dir = str(root)
  c.dataset.augment.scales = (1.0,)
  c.model.update(features=8, aggregate_features=4)  # compiles faster; still multitask + C
  assert c.model.tasks == 'multitask'
  _train_and_check(c, str(tmp_path / 'run'), 'normals/mean')


def test_padnet_trains_from_nyuv2_mat(tmp_path):
  test_nyuv2._write_nyu(tmp_path / 'nyu', n=6, h=24, w=32)  # pylint: disable=protected-access
  c = _shrink(load_config('configs/padnet.py:nyuv2'), tmp_path, (24, 32))
  c.dataset.data_dir = str(tmp_path / 'nyu')
  c.model.update(features=8, aggregate_features=4, distillation='none')  # compiles faster
  _train_and_check(c, str(tmp_path / 'run'), 'miou')


def test_dsr_trains_from_middlebury_fullsize(tmp_path):
  root = tmp_path / 'middlebury'
  for scene in ('Aloe', 'Baby1', 'Art'):  # Art is a held-out (val) scene
    test_middlebury._scene_2005(root / 'FullSize', scene, h=24, w=32)  # pylint: disable=protected-access
  c = load_config('configs/dsr.py:middlebury,smoke')
  c.num_train_steps = 2
  c.checkpoint_every_steps = 2
  c.dataset.data_dir = str(root)
  c.dataset.prepared_dir = str(tmp_path / 'prepared')
  c.dataset.augment.crop_size = (16, 16)
  _train_and_check(c, str(tmp_path / 'run'), 'rmse')
