"""The source registry: real datasets behind config.dataset, their errors, and the pipeline."""
import ml_collections
import numpy as np
import pytest

from jaxseg.data import pipeline, recipes, sources
from jaxseg.data.formats import DatasetLayoutError, cityscapes
from tests.data.formats import test_cityscapes as city_w
from tests.data.formats import test_middlebury as mb_w


def _cfg(**kw):
  return ml_collections.ConfigDict(kw)


@pytest.fixture(scope='module')
def city(tmp_path_factory):
  root = tmp_path_factory.mktemp('data') / 'cityscapes'
  city_w._write_city(root, 'train')
  city_w._write_city(root, 'val')
  return root, root.parent / 'prepared'


def test_every_dataset_is_registered():
  assert {'synthetic', 'cityscapes', 'gta5', 'synthia', 'nyuv2', 'nyuv2_dsr', 'voc', 'ade20k',
          'middlebury', 'sintel', 'tofmark'} <= set(sources.SOURCES)


def test_unknown_name_and_split():
  with pytest.raises(ValueError, match="config.dataset.name='kitti'"):
    sources.make_source(_cfg(name='kitti'), 'train')
  with pytest.raises(ValueError, match="split must be one of"):
    sources.make_source(_cfg(name='cityscapes'), 'test')


def test_missing_data_dir_names_the_field(tmp_path):
  with pytest.raises(ValueError, match='config.dataset.data_dir is not set') as e:
    sources.make_source(_cfg(name='cityscapes', prepared_dir=str(tmp_path)), 'train')
  assert 'leftImg8bit' in str(e.value)  # the expected layout is printed
  missing = tmp_path / 'nowhere'
  with pytest.raises(DatasetLayoutError, match='config.dataset.data_dir is not a directory') as e:
    sources.make_source(_cfg(name='cityscapes', data_dir=str(missing),
                             prepared_dir=str(tmp_path)), 'train')
  assert e.value.path == str(missing) and 'Expected layout' in str(e.value)


def test_cityscapes_source_train_val_meta(city):
  root, prepared = city
  cfg = _cfg(name='cityscapes', data_dir=str(root), prepared_dir=str(prepared), depth=True)
  train, val = sources.make_source(cfg, 'train'), sources.make_source(cfg, 'val')
  assert len(train) == len(val) == 2
  assert train.meta['num_classes'] == 19 and train.meta['class_names'][0] == 'road'
  assert train.meta['palette'].shape == (19, 3) and train.meta['ignore_label'] == 255
  ref = cityscapes.read_example(cityscapes.list_examples(root, 'val', depth=True)[1])
  got = val[1]
  for k in ref:
    np.testing.assert_array_equal(got[k], ref[k])
  assert val.example_id(1) == city_w.FRAMES[1]
  cfg13 = _cfg(name='cityscapes', data_dir=str(root), prepared_dir=str(prepared),
               num_classes=13)
  assert sources.make_source(cfg13, 'val').meta['num_classes'] == 13
  with pytest.raises(ValueError, match='config.dataset.num_classes=20'):
    sources.make_source(_cfg(name='cityscapes', num_classes=20), 'val')


def test_training_only_sets_and_val_dataset(city, tmp_path):
  root, prepared = city
  with pytest.raises(ValueError, match="'gta5' has no 'val' split.*config.dataset.val_dataset"):
    sources.make_source(_cfg(name='gta5', data_dir=str(tmp_path)), 'val')
  cfg = _cfg(name='gta5', data_dir=str(tmp_path),
             val_dataset=dict(name='cityscapes', data_dir=str(root),
                              prepared_dir=str(prepared)))
  assert sources.make_source(cfg, 'val').meta['name'] == 'cityscapes'
  with pytest.raises(ValueError, match="'tofmark' has no 'train' split"):
    sources.make_source(_cfg(name='tofmark'), 'train')


def test_middlebury_holds_out_the_2005_test_scenes(tmp_path):
  root = tmp_path / 'middlebury'
  for scene in ('Art', 'Aloe', 'Books', 'Wood1'):
    mb_w._scene_2005(root / 'FullSize', scene)
  cfg = _cfg(name='middlebury', data_dir=str(root), prepared_dir=str(tmp_path / 'p'))
  train, val = sources.make_source(cfg, 'train'), sources.make_source(cfg, 'val')
  assert [train.example_id(i) for i in range(len(train))] == ['Aloe', 'Wood1']
  assert [val.example_id(i) for i in range(len(val))] == ['Art', 'Books']
  assert val[0]['depth'].dtype == np.float32 and val.meta['num_classes'] == 0


def test_pipeline_over_a_prepared_source(city):
  root, prepared = city
  cfg = _cfg(name='cityscapes', data_dir=str(root), prepared_dir=str(prepared))
  src = sources.make_source(cfg, 'train')
  aug = ml_collections.ConfigDict(recipes.recipe('pspnet', crop_size=(8, 8)))
  batches = pipeline.TrainBatches(src, recipes.make_train_transform(aug, ('image', 'label')),
                                  global_batch_size=3, seed=0)
  got = list(batches.iterate(0, 2))
  assert got[0]['image'].shape == (3, 8, 8, 3) and got[1]['label'].dtype == np.int32
  np.testing.assert_array_equal(got[1]['label'], batches[1]['label'])  # deterministic
  evals = list(pipeline.eval_batches(sources.make_source(cfg, 'val'),
                                     recipes.make_eval_transform(aug, ('image', 'label')), 4))
  assert len(evals) == 1 and evals[0]['mask'].tolist() == [True, True, False, False]


@pytest.mark.parametrize('variant', ['voc', 'cityscapes', 'ade20k', 'gta5', 'synthia'])
def test_deeplabv2_dataset_variants_validate(variant, tmp_path):
  from jaxseg.runner import config_checks  # pylint: disable=g-import-not-at-top
  from jaxseg.config_files import load_config  # pylint: disable=g-import-not-at-top
  c = load_config(f'configs/deeplabv2.py:{variant}')
  config_checks.validate(c)
  assert c.dataset.name == variant and c.dataset.data_dir == ''
  recipes.make_train_transform(c.dataset.augment, ('image', 'label'))
  with c.unlocked():
    c.dataset.prepared_dir = str(tmp_path)
  with pytest.raises(ValueError, match='config.dataset.data_dir is not set'):
    sources.make_source(c.dataset, 'train')
  if variant in ('gta5', 'synthia'):  # evaluated on Cityscapes val, same classes
    assert c.dataset.val_dataset.name == 'cityscapes'
    assert c.dataset.val_dataset.num_classes == c.dataset.get('num_classes', 19)


class _FakeSource:
  def __init__(self, ids):
    self.ids = list(ids)

  def __len__(self):
    return len(self.ids)

  def __getitem__(self, i):
    return {'id': self.ids[i]}

  def example_id(self, i):
    return self.ids[i]


def test_sintel_middlebury_mixed_set(monkeypatch):
  """58 Sintel + 34 Middlebury (never a test scene), 82 train / 10 val by 1-based index."""
  sintel = _FakeSource(f'scene{i // 10}/frame_{i % 10:04d}' for i in range(100))
  mb = _FakeSource(['Art', 'Books', 'Dolls', 'Laundry', 'Moebius', 'Reindeer']
                   + [f'Scene{i:02d}' for i in range(40)])
  monkeypatch.setattr(sources, '_real', lambda name, cfg, split: {'sintel': sintel,
                                                                  'middlebury': mb}[name])
  cfg = ml_collections.ConfigDict(dict(name='sintel_middlebury', sintel_dir='s',
                                       middlebury_dir='m'))
  train, val = sources.make_source(cfg, 'train'), sources.make_source(cfg, 'val')
  assert (len(train), len(val)) == (82, 10)
  ids = [val.example_id(i) for i in range(10)]
  assert ids[0] == 'scene0/frame_0000'  # frame 1 = the first Sintel frame
  assert ids[3] == 'scene9/frame_0009'  # frame 58: the last Sintel pick
  assert ids[4] == 'Scene05'  # frame 64: the sixth Middlebury scene
  names = {train.example_id(i) for i in range(82)} | set(ids)
  assert not names & set(sources.MIDDLEBURY_TEST) and len(names) == 92
  cfg.num_middlebury = 41
  with pytest.raises(ValueError, match='num_middlebury'):
    sources.make_source(cfg, 'train')
