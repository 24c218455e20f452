"""Cityscapes reader on format-exact fixtures and on the real samples."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from jaxseg.data.derived import contours_from_labels
from jaxseg.data.formats import cityscapes, common, middlebury

from ._util import layout_error

H, W = 12, 20
FRAMES = ('frankfurt_000000_000294', 'frankfurt_000001_000019')
CAMERA = {'extrinsic': {'baseline': 0.209313, 'pitch': 0.038, 'roll': 0.0, 'x': 1.7, 'y': 0.1,
                        'yaw': -0.0195, 'z': 1.22},
          'intrinsic': {'fx': 2262.52, 'fy': 2265.30, 'u0': 1096.98, 'v0': 513.137}}

# labelId -> trainId, written out independently of the module (cityscapesscripts labels.py).
EXPECTED = {i: 255 for i in range(34)}
EXPECTED.update({7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18})


def _write_city(root, split='val'):
  """Writes two frames; returns {frame: dict of written arrays}."""
  rng = np.random.default_rng(0)
  written = {}
  for n, frame in enumerate(FRAMES):
    city = frame.split('_')[0]
    dirs = {k: root / k / split / city
            for k in ('leftImg8bit', 'gtFine', 'disparity', 'camera')}
    for d in dirs.values():
      d.mkdir(parents=True, exist_ok=True)
    image = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)
    Image.fromarray(image).save(dirs['leftImg8bit'] / f'{frame}_leftImg8bit.png')
    ids = (np.arange(H * W) % 34).astype(np.uint8).reshape(H, W)   # every label id 0..33
    ids = rng.permutation(ids.ravel()).reshape(H, W)
    Image.fromarray(ids).save(dirs['gtFine'] / f'{frame}_gtFine_labelIds.png')
    d = rng.uniform(0.3, 120.0, (H, W))
    p = np.round(d * 256).astype(np.int64) + 1    # the published encoding
    p[0, :3] = 0     # invalid
    p[1, :2] = 1     # d = 0: infinitely far, invalid
    p = p.astype(np.uint16)
    path = dirs['disparity'] / f'{frame}_disparity.png'
    if n == 0:
      Image.fromarray(p).save(path)                  # Pillow 'I;16'
    else:
      common.write_png(path, p, filters=(0, 1, 2, 3, 4))
    cam = json.loads(json.dumps(CAMERA))
    cam['extrinsic']['baseline'] += 0.01 * n
    (dirs['camera'] / f'{frame}_camera.json').write_text(json.dumps(cam))
    written[frame] = {'image': image, 'ids': ids, 'p': p, 'camera': cam}
  return written


@pytest.fixture
def city(tmp_path):
  root = tmp_path / 'cityscapes'
  return root, _write_city(root)


def test_lut_covers_every_label_id():
  for i, t in EXPECTED.items():
    assert cityscapes.LABEL_ID_LUT[i] == t, i
  assert (cityscapes.LABEL_ID_LUT[34:] == 255).all()
  assert len(cityscapes.CLASS_NAMES) == 19 and cityscapes.PALETTE.shape == (19, 3)


def test_roundtrip_images_labels_depth(city):
  root, written = city
  entries = cityscapes.list_examples(root, 'val', depth=True)
  assert [e['id'] for e in entries] == list(FRAMES)
  for e in entries:
    ref = written[e['id']]
    ex = cityscapes.read_example(e)
    np.testing.assert_array_equal(ex['image'], ref['image'])
    assert ex['label'].dtype == np.uint8 and ex['label'].shape == (H, W)
    np.testing.assert_array_equal(ex['label'], np.vectorize(EXPECTED.get)(ref['ids']))
    p = ref['p'].astype(np.float64)
    valid = p > 1
    np.testing.assert_array_equal(ex['valid'], valid)
    d = (p - 1) / 256
    np.testing.assert_array_equal(ex['disparity'], np.where(valid, d, 0).astype(np.float32))
    b, fx = ref['camera']['extrinsic']['baseline'], ref['camera']['intrinsic']['fx']
    depth = np.where(valid, b * fx / np.where(valid, d, 1), 0)
    assert ex['depth'].dtype == np.float32
    np.testing.assert_allclose(ex['depth'], depth, rtol=1e-6)
    assert (ex['depth'][~valid] == 0).all()
    # Units: metres. 0.209313 m * 2262.52 px / 1 px ~ 473.6 m; plausible street depths.
    assert ex['depth'][valid].min() > 3.5


def test_derived_normals_and_contours(city):
  """PAD-Net's intermediate targets: a constant disparity is a fronto-parallel plane, whose
  normal faces the camera, (0, 0, -1); zero (undefined) at and next to invalid depth; contours
  are the label boundaries of the trainIds."""
  root, written = city
  entry = cityscapes.list_examples(root, 'val', depth=True)[0]
  p = np.full((H, W), 2561, np.uint16)   # disparity 10 px everywhere ...
  p[0, :3] = 0                             # ... but three invalid pixels
  Image.fromarray(p).save(entry['disparity'])
  ex = cityscapes.read_example(entry)
  assert ex['normals'].shape == (H, W, 3) and ex['normals'].dtype == np.float32
  near_invalid = np.zeros((H, W), bool)
  near_invalid[:2, :4] = True
  np.testing.assert_allclose(ex['normals'][~near_invalid], [[0.0, 0.0, -1.0]] * int(
      (~near_invalid).sum()), atol=1e-6)
  assert (ex['normals'][0, :3] == 0).all() and (ex['normals'][1, :3] == 0).all()
  np.testing.assert_array_equal(ex['contours'], contours_from_labels(ex['label']))
  assert set(np.unique(ex['contours'])) <= {0, 1} and ex['contours'].sum() > 0


def test_without_depth_or_labels(city):
  root, _ = city
  (e,) = cityscapes.list_examples(root, 'val', labels=False)[:1]
  assert set(cityscapes.read_example(e)) == {'image'}


def test_missing_directories_and_files(city):
  root, _ = city
  with pytest.raises(ValueError):
    cityscapes.list_examples(root, 'training')
  with layout_error('leftImg8bit/train'):
    cityscapes.list_examples(root, 'train')
  (root / 'gtFine/val/frankfurt' / f'{FRAMES[1]}_gtFine_labelIds.png').unlink()
  with layout_error(f'{FRAMES[1]}_gtFine_labelIds.png'):
    cityscapes.list_examples(root, 'val')
  shutil.rmtree(root / 'camera')
  with layout_error('') as err:
    cityscapes.list_examples(root, 'val', labels=False, depth=True)
  assert f'{FRAMES[0]}_camera.json' in str(err.value)
  assert 'Expected layout' in str(err.value)


def test_corrupt_files(city):
  root, _ = city
  entry = cityscapes.list_examples(root, 'val', depth=True)[0]
  label = entry['label']
  blob = open(label, 'rb').read()
  open(label, 'wb').write(blob[:len(blob) // 2])
  with layout_error('gtFine_labelIds.png'):
    cityscapes.read_example(entry)
  entry = cityscapes.list_examples(root, 'val', labels=False, depth=True)[0]
  open(entry['camera'], 'w').write('{"extrinsic": {}}')
  with layout_error('camera.json'):
    cityscapes.read_example(entry)
  open(entry['camera'], 'w').write('{not json')
  with layout_error('camera.json'):
    cityscapes.read_example(entry)


def test_label_size_mismatch(city):
  root, _ = city
  entry = cityscapes.list_examples(root, 'val')[0]
  Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(entry['label'])
  with layout_error('differs from the image'):
    cityscapes.read_example(entry)


def test_disparity_from_real_middlebury_pfm(tmp_path, real):
  d = middlebury.read_pfm(real('middlebury/2014_ArtL/disp0GT.pfm'))[:64, :96]
  d = np.where(np.isfinite(d), d, np.inf)
  root = tmp_path / 'cs'
  rng = np.random.default_rng(0)
  frame = FRAMES[0]
  for k in ('leftImg8bit', 'disparity', 'camera'):
    (root / k / 'val' / 'frankfurt').mkdir(parents=True)
  Image.fromarray(rng.integers(0, 256, (64, 96, 3)).astype(np.uint8)).save(
      root / 'leftImg8bit/val/frankfurt' / f'{frame}_leftImg8bit.png')
  p = np.where(np.isfinite(d), np.round(np.where(np.isfinite(d), d, 0) * 256) + 1, 0)
  Image.fromarray(p.astype(np.uint16)).save(root / 'disparity/val/frankfurt' /
                                            f'{frame}_disparity.png')
  (root / 'camera/val/frankfurt' / f'{frame}_camera.json').write_text(json.dumps(CAMERA))
  (e,) = cityscapes.list_examples(root, 'val', labels=False, depth=True)
  ex = cityscapes.read_example(e)
  fin = np.isfinite(d)
  np.testing.assert_array_equal(ex['valid'], fin)
  np.testing.assert_allclose(ex['disparity'][fin], d[fin], atol=1 / 512 + 1e-6)
  np.testing.assert_allclose(ex['depth'][fin], 0.209313 * 2262.52 / ex['disparity'][fin],
                             rtol=1e-6)


# ------------------------------------------------------------------------------ real samples


def test_real_label_ids_match_shipped_train_ids(real):
  base = 'cityscapes/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_'
  ids = np.asarray(Image.open(real(base + 'labelIds.png')))
  shipped = np.asarray(Image.open(real(base + 'labelTrainIds.png')))
  ours = cityscapes.label_ids_to_train_ids(ids)
  agreement = (ours == shipped).mean()
  assert agreement >= 0.995, agreement


def test_real_instance_ids_match_label_ids(real):
  base = 'cityscapes/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_'
  ids = common.read_index_png(real(base + 'labelIds.png'), '')
  inst = common.read_index_png(real(base + 'instanceIds.png'), '', allow_16bit=True)
  assert inst.dtype == np.uint16 and inst.max() >= 24000
  on = inst >= 1000
  assert on.any()
  np.testing.assert_array_equal(inst[on] // 1000, ids[on])
  np.testing.assert_array_equal(inst[~on], ids[~on])


def test_real_layout_lists_and_reads(real):
  root = real('cityscapes')
  real('cityscapes/gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png')
  entries = cityscapes.list_examples(root, 'val')
  assert [e['id'] for e in entries] == ['frankfurt_000000_000294']
  ex = cityscapes.read_example(entries[0])
  assert ex['image'].shape == (128, 256, 3) and ex['image'].dtype == np.uint8
  assert ex['label'].shape == (128, 256)
  assert set(np.unique(ex['label'])) <= set(range(19)) | {255}
