"""--mode=predict on the user's own images: palette PNGs + overlays; bad files named, others written."""
import numpy as np
import pytest
from PIL import Image

import jax

from jaxseg.config_files import load_config
from jaxseg.runner import loop
from jaxseg.runner.predict_files import PredictInputError, list_inputs, predict_files

pytestmark = pytest.mark.usefixtures('fast_compile')


def _config(tmp_path, pattern):
  c = load_config('configs/deeplabv2.py:smoke')
  c.model.msc = False
  c.dataset.num_train, c.dataset.num_val = 2, 1
  c.predict.input = pattern
  return c


def test_palette_pngs_and_overlays(tmp_path):
  images = tmp_path / 'images'
  images.mkdir()
  rng = np.random.default_rng(0)
  raws = {name: rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
          for name, (h, w) in {'a': (40, 56), 'b': (33, 33)}.items()}
  for name, raw in raws.items():
    Image.fromarray(raw).save(images / f'{name}.png')
  (images / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not really a jpeg')
  (images / 'notes.txt').write_text('not an image')
  config = _config(tmp_path, str(images))
  s = loop.setup(config, str(tmp_path / 'run'))
  out = tmp_path / 'out'
  with pytest.raises(PredictInputError, match=r'(?s)1 of 3 images.*broken\.jpg: corrupt'):
    predict_files(s.method, s.state, config, str(out))
  s.checkpointer.close()
  assert sorted(p.name for p in out.iterdir()) == ['a.png', 'a_overlay.png', 'b.png',
                                                   'b_overlay.png']
  palette = np.asarray(s.method.meta['palette'], np.uint8)
  transform = s.method.image_transform()
  for name, raw in raws.items():
    png = Image.open(out / f'{name}.png')
    assert png.mode == 'P' and png.size == (raw.shape[1], raw.shape[0])
    label = np.asarray(png)
    # The class ids are the method's own predictions for that image.
    want = s.method.predict_step(s.state, {'image': transform({'image': raw})['image'][None]})
    np.testing.assert_array_equal(label, np.asarray(jax.device_get(want['label'][0])))
    colours = np.asarray(png.getpalette(), np.uint8).reshape(-1, 3)[:len(palette)]
    np.testing.assert_array_equal(colours, palette)
    over = np.asarray(Image.open(out / f'{name}_overlay.png'))
    np.testing.assert_allclose(over, 0.5 * raw + 0.5 * palette[label], atol=0.51)


def test_inputs_that_name_nothing(tmp_path):
  (tmp_path / 'empty').mkdir()
  with pytest.raises(PredictInputError, match='no images there'):
    list_inputs(str(tmp_path / 'empty'))
  with pytest.raises(PredictInputError, match='no images there'):
    list_inputs(str(tmp_path / 'nothing' / '*.png'))
  assert list_inputs(str(tmp_path / 'missing.png')) == [str(tmp_path / 'missing.png')]
