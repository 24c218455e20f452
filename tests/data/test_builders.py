"""TFDS builders: prepare tiny format-exact layouts once, read them back exactly, reuse them."""
import os

import numpy as np
import pytest

from jaxseg.data import builders
from jaxseg.data.builders import base
from jaxseg.data.formats import (ade20k, cityscapes, gta5, middlebury, nyuv2, sintel, synthia,
                                 tofmark, voc)
from tests.data.formats import test_ade20k as ade_w
from tests.data.formats import test_cityscapes as city_w
from tests.data.formats import test_gta5 as gta_w
from tests.data.formats import test_middlebury as mb_w
from tests.data.formats import test_nyuv2 as nyu_w
from tests.data.formats import test_sintel as sintel_w
from tests.data.formats import test_synthia as syn_w
from tests.data.formats import test_tofmark as tof_w
from tests.data.formats import test_voc as voc_w
from tests.data.formats._util import layout_error


def _prepare(tmp_path, name, root, splits, config='default', **kw):
  cls = builders.BUILDERS[name]
  cfg = config if isinstance(config, base.Config) else cls.builder_configs[config]
  return builders.prepare(cls, cfg, str(root), str(tmp_path / 'prepared'), splits=splits,
                          threads=2, **kw)


def _assert_same(ref: dict, got: dict):
  assert sorted(ref) == sorted(got)
  for k in ref:
    assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape, k
    np.testing.assert_array_equal(got[k], ref[k], err_msg=k)


def _check_roundtrip(prep, fmt, root, split, list_kwargs=None, **decode):
  entries = fmt.list_examples(root, split, **(list_kwargs or {}))
  ds = prep.data_source(split)
  assert len(ds) == len(entries) and prep.splits[split] == [str(e['id']) for e in entries]
  out = []
  for i, e in enumerate(entries):
    got = prep.builder_cls.decode(ds[i], **decode)
    _assert_same(fmt.read_example(e), got)
    out.append(got)
  return out


def test_cityscapes_labels_and_metric_depth(tmp_path):
  root = tmp_path / 'cityscapes'
  written = {**city_w._write_city(root, 'train'), **city_w._write_city(root, 'val')}
  prep = _prepare(tmp_path, 'cityscapes', root, ('train', 'val'), 'fine_depth')
  assert prep.path.endswith(os.path.join('jaxseg_cityscapes', 'fine_depth', '1.1.0'))
  for split in ('train', 'val'):
    got = _check_roundtrip(prep, cityscapes, root, split, {'depth': True})
    for ex, frame in zip(got, city_w.FRAMES):
      ref = written[frame]
      np.testing.assert_array_equal(ex['label'], np.vectorize(city_w.EXPECTED.get)(ref['ids']))
      cam, p = ref['camera'], ref['p'].astype(np.float64)
      ok = p > 1
      metres = cam['extrinsic']['baseline'] * cam['intrinsic']['fx'] / ((p[ok] - 1) / 256)
      np.testing.assert_allclose(ex['depth'][ok], metres, rtol=1e-6)
      assert not ex['depth'][~ok].any() and (ex['valid'] == ok).all()
  # 16 / 13-class views of the trainIds (SYNTHIA protocols).
  ex = prep.builder_cls.decode(prep.data_source('val')[0], num_classes=13)
  ref = cityscapes.read_example(cityscapes.list_examples(root, 'val')[0])['label']
  names = np.array(cityscapes.CLASS_NAMES + ('',) * 237)[ref]
  want = np.array([synthia.CLASS_NAMES_13.index(n) if n in synthia.CLASS_NAMES_13 else 255
                   for n in names.ravel()]).reshape(ref.shape)
  np.testing.assert_array_equal(ex['label'], want)


def test_gta5(tmp_path):
  root = tmp_path / 'GTA5'
  gta_w._write_gta(root, label_hw=(5, 8))  # labels resized to the image by the reader
  prep = _prepare(tmp_path, 'gta5', root, ('all',))
  got = _check_roundtrip(prep, gta5, root, 'all')
  assert got[0]['label'].shape == (10, 16)


@pytest.mark.parametrize('num_classes', [16, 13, 19])
def test_synthia_16bit_labels_every_protocol(tmp_path, num_classes):
  root = tmp_path / 'RAND_CITYSCAPES'
  written = syn_w._write_synthia(root, [syn_w._all_ids()])
  prep = _prepare(tmp_path, 'synthia', root, ('all',))
  got = _check_roundtrip(prep, synthia, root, 'all', {'num_classes': num_classes},
                         num_classes=num_classes)
  table = {16: synthia.SYNTHIA_TO_16, 13: synthia.SYNTHIA_TO_13,
           19: synthia.SYNTHIA_TO_TRAIN_ID}[num_classes]
  np.testing.assert_array_equal(got[0]['label'], syn_w._expected(written['0000000'][1], table))


@pytest.mark.parametrize('config', ['40', '13', 'depth'])
def test_nyuv2_v73(tmp_path, config):
  root = tmp_path / 'nyu'
  ref = nyu_w._write_nyu(root, labels=config != 'depth')
  prep = _prepare(tmp_path, 'nyuv2', root, ('train', 'test'), config)
  kwargs = {'num_classes': {'40': 40, '13': 13, 'depth': None}[config]}
  got = _check_roundtrip(prep, nyuv2, root, 'test', kwargs)
  _check_roundtrip(prep, nyuv2, root, 'train', kwargs)
  first = ref['test'][0] - 1  # 1-based in splits.mat
  np.testing.assert_array_equal(got[0]['image'], ref['images'][..., first])  # (H, W, 3) order
  np.testing.assert_array_equal(got[0]['depth'], ref['depths'][..., first])  # metres
  assert got[0]['normals'].shape == (24, 40, 3)
  assert ('label' in got[0]) == (config != 'depth')


def test_voc_train_aug(tmp_path):
  root = tmp_path / 'VOCdevkit'
  voc_w._write_voc(root)
  prep = _prepare(tmp_path, 'voc', root, ('train_aug', 'val'))
  _check_roundtrip(prep, voc, root, 'train_aug')
  _check_roundtrip(prep, voc, root, 'val')


def test_ade20k(tmp_path):
  root = tmp_path / 'ADEChallengeData2016'
  ade_w._write_ade(root)
  ade_w._write_ade(root, 'validation', 'ADE_val')
  prep = _prepare(tmp_path, 'ade20k', root, ('training', 'validation'))
  _check_roundtrip(prep, ade20k, root, 'validation')


def test_middlebury_2014_and_2005(tmp_path):
  root = tmp_path / 'middlebury'
  mb_w._scene_2014(root / 'trainingH', 'Art')
  mb_w._scene_2005(root / 'FullSize', 'Art')
  mb_w._scene_2005(root / 'FullSize', 'Aloe', dmin=270)
  prep = _prepare(tmp_path, 'middlebury', root, ('trainingH', 'FullSize'))
  _check_roundtrip(prep, middlebury, root, 'trainingH')
  _check_roundtrip(prep, middlebury, root, 'FullSize')


def test_sintel_dpt(tmp_path):
  root = tmp_path / 'sintel'
  rng = np.random.default_rng(0)
  sintel_w._write_sintel(root, {('alley_1', 'frame_0001'): rng.uniform(1, 50, (6, 8)),
                                ('bamboo_2', 'frame_0001'): rng.uniform(1, 50, (6, 8))})
  prep = _prepare(tmp_path, 'sintel', root, ('training',), 'clean')
  _check_roundtrip(prep, sintel, root, 'training', {'image_pass': 'clean'})


def test_tofmark_named_files_get_their_own_config(tmp_path):
  root = tmp_path / 'tofmark'
  tof_w._write_tofmark(root)
  prep = _prepare(tmp_path, 'tofmark', root, ('test',), 'png16_mm')
  _check_roundtrip(prep, tofmark, root, 'test')
  files = {'guide': None}
  cfg = builders.tofmark.config_for('png16_mm', files)
  assert cfg.name.startswith('png16_mm-')
  prep2 = _prepare(tmp_path, 'tofmark', root, ('test',), cfg)
  assert prep2.path != prep.path
  _check_roundtrip(prep2, tofmark, root, 'test', {'files': files})


def _city(tmp_path):
  root = tmp_path / 'cityscapes'
  city_w._write_city(root, 'val')
  return root


def _count_reads(monkeypatch):
  calls = []
  real = cityscapes.read_example
  monkeypatch.setattr(cityscapes, 'read_example', lambda e: calls.append(e) or real(e))
  return calls


def test_second_prepare_reuses_without_reading(tmp_path, monkeypatch):
  root = _city(tmp_path)
  calls = _count_reads(monkeypatch)
  first = _prepare(tmp_path, 'cityscapes', root, ('val',), 'fine')
  assert len(calls) == 2 and not first.reused
  records = os.path.join(first.path, 'jaxseg_cityscapes-val.array_record-00000-of-00001')
  stamp = os.stat(records).st_mtime_ns
  again = _prepare(tmp_path, 'cityscapes', root, ('val',), 'fine')
  assert again.reused and len(calls) == 2 and os.stat(records).st_mtime_ns == stamp
  # Reuse needs no data_dir at all; a missing split prepares everything again.
  assert _prepare(tmp_path, 'cityscapes', '', ('val',), 'fine').reused
  city_w._write_city(root, 'train')
  both = _prepare(tmp_path, 'cityscapes', root, ('train',), 'fine')
  assert not both.reused and sorted(both.splits) == ['train', 'val'] and len(calls) == 6


def _assert_survives(prep, want_first_label):
  ds = prep.data_source('val')
  np.testing.assert_array_equal(prep.builder_cls.decode(ds[0])['label'], want_first_label)
  left = [n for n in os.listdir(prep.prepared_dir) if n.startswith('.incomplete')]
  assert not left, f'temporary folders left behind: {left}'


@pytest.mark.parametrize('damage', ['missing', 'corrupt'])
def test_bad_input_names_the_file_and_keeps_the_prepared_copy(tmp_path, damage):
  root = _city(tmp_path)
  prep = _prepare(tmp_path, 'cityscapes', root, ('val',), 'fine')
  label0 = prep.builder_cls.decode(prep.data_source('val')[0])['label']
  frame = city_w.FRAMES[1]
  bad = root / 'gtFine' / 'val' / 'frankfurt' / f'{frame}_gtFine_labelIds.png'
  if damage == 'missing':
    bad.unlink()
  else:
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
  pattern = 'missing file' if damage == 'missing' else 'corrupt'
  with layout_error(f'{pattern}.*{frame}_gtFine_labelIds.png'):
    _prepare(tmp_path, 'cityscapes', root, ('val',), 'fine', force=True)
  _assert_survives(prep, label0)


def test_corrupt_file_on_first_prepare_leaves_nothing(tmp_path):
  root = _city(tmp_path)
  bad = root / 'leftImg8bit' / 'val' / 'frankfurt' / f'{city_w.FRAMES[0]}_leftImg8bit.png'
  bad.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)
  with layout_error(f'corrupt.*{bad.name}'):
    _prepare(tmp_path, 'cityscapes', root, ('val',), 'fine')
  prepared = tmp_path / 'prepared'
  assert not (prepared / 'jaxseg_cityscapes' / 'fine' / '1.0.0').exists()
  assert not [n for n in os.listdir(prepared) if n.startswith('.incomplete')]


def test_interrupted_swap_is_recovered(tmp_path):
  root = _city(tmp_path)
  prep = _prepare(tmp_path, 'cityscapes', root, ('val',), 'fine')
  os.rename(prep.path, prep.path + '.old-deadbeef')  # crash between the two renames
  again = _prepare(tmp_path, 'cityscapes', '', ('val',), 'fine')
  assert again.reused and os.path.isdir(prep.path)


def test_expected_layout_is_the_manual_instructions():
  for name, cls in builders.BUILDERS.items():
    assert cls.MANUAL_DOWNLOAD_INSTRUCTIONS == cls.FORMAT.EXPECTED_LAYOUT, name


def test_real_cityscapes_sample(tmp_path, realdata):
  """The real frame laid out by symlinks: prepared labels agree with the shipped trainIds."""
  src = realdata / 'cityscapes'
  frame = 'frankfurt_000000_000294'
  files = {f'leftImg8bit/val/frankfurt/{frame}_leftImg8bit.png',
           f'gtFine/val/frankfurt/{frame}_gtFine_labelIds.png'}
  if not all((src / f).exists() for f in files):
    pytest.skip(f'real Cityscapes frame {frame} not found under {src}')
  root = tmp_path / 'cityscapes'
  for f in files:
    (root / f).parent.mkdir(parents=True, exist_ok=True)
    (root / f).symlink_to(src / f)
  prep = _prepare(tmp_path, 'cityscapes', root, ('val',), 'fine')
  [ex] = _check_roundtrip(prep, cityscapes, root, 'val')
  assert ex['image'].shape == (128, 256, 3) and prep.splits['val'] == [frame]
  shipped = src / f'gtFine/val/frankfurt/{frame}_gtFine_labelTrainIds.png'
  if shipped.exists():
    from PIL import Image  # pylint: disable=g-import-not-at-top
    agree = np.mean(ex['label'] == np.asarray(Image.open(shipped)))
    assert agree > 0.995, agree  # the shipped file was rasterised separately (~0.2 %)


def test_real_middlebury_2014_scene(tmp_path, realdata):
  """The real MiddEval3 ArtL (PFM, calib.txt) laid out by symlinks, prepared and read back."""
  src = realdata / 'middlebury' / '2014_ArtL'
  names = ('im0.png', 'disp0GT.pfm', 'calib.txt')
  if not all((src / n).exists() for n in names):
    pytest.skip(f'real Middlebury 2014 ArtL files not found under {src}')
  scene = tmp_path / 'middlebury' / 'trainingH' / 'ArtL'
  scene.mkdir(parents=True)
  for n in names:
    (scene / n).symlink_to(src / n)
  prep = _prepare(tmp_path, 'middlebury', tmp_path / 'middlebury', ('trainingH',))
  [ex] = _check_roundtrip(prep, middlebury, tmp_path / 'middlebury', 'trainingH')
  assert ex['depth'].shape == (554, 694) and (~ex['valid']).sum() == 896  # inf = invalid
  assert 1.0 < np.median(ex['depth'][ex['valid']]) < 10.0  # metres
