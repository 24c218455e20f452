"""Cityscapes: leftImg8bit + gtFine labelIds (-> 19 trainIds), optionally disparity + camera.

Configs: 'fine' (image, label) and 'fine_depth' (also disparity, metric depth and the derived
normals and contours). Depth is stored as the publisher's 16-bit disparity code p (0 =
invalid) plus the frame's camera (baseline, fx, fy, u0, v0); `decode` recomputes disparity (p - 1) / 256 and depth = baseline * fx / disparity with the
reader's own functions, so the result equals `formats.cityscapes.read_example` exactly (normals and contours are
derived at decode time, as the reader does).
Decode option `num_classes` 16 or 13 remaps trainIds to the SYNTHIA protocols.
"""
import numpy as np
import tensorflow_datasets as tfds

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import cityscapes, synthia

CAMERA_FIELDS = ('baseline', 'fx', 'fy', 'u0', 'v0')  # per frame, from *_camera.json


# trainId (0..18, 255) -> class index of the 16 / 13-class SYNTHIA protocols.
def _protocol_lut(names) -> np.ndarray:
  lut = np.full(256, 255, np.uint8)
  for k, name in enumerate(names):
    lut[cityscapes.CLASS_NAMES.index(name)] = k
  return lut


TRAIN_ID_TO_PROTOCOL = {16: _protocol_lut(synthia.CLASS_NAMES_16),
                        13: _protocol_lut(synthia.CLASS_NAMES_13)}


def remap_classes(label: np.ndarray, num_classes: int) -> np.ndarray:
  """19-class trainIds -> the 19 / 16 / 13-class protocol (255 stays ignore)."""
  return label if num_classes == 19 else TRAIN_ID_TO_PROTOCOL[num_classes][label]


class JaxsegCityscapes(base.Builder):
  """Cityscapes (fine annotations), prepared from the publisher's layout."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {'1.0.0': 'First jaxseg release.',
                   '1.1.0': 'fine_depth keeps fy, u0, v0: normals are derived at decode time.'}
  FORMAT = cityscapes
  MANUAL_DOWNLOAD_INSTRUCTIONS = cityscapes.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name='fine', list_kwargs={'depth': False}),
                     base.Config(name='fine_depth', list_kwargs={'depth': True})]

  def fields(self):
    f = {'image': codecs.image_feature(), 'label': codecs.array_feature(np.uint8, 2)}
    if self.builder_config.list_kwargs['depth']:
      f.update(disparity_code=codecs.array_feature(np.uint16, 2),
               **{k: codecs.scalar_feature() for k in CAMERA_FIELDS})
    return f

  def encode(self, entry, example):
    rec = {'image': codecs.encode_image(example['image'], entry['image']),
           'label': example['label']}
    if 'disparity' in example:
      d = example['disparity'].astype(np.float64)
      rec['disparity_code'] = np.where(d > 0, np.round(d * 256) + 1, 0).astype(np.uint16)
      cam = cityscapes.read_camera(entry['camera'])
      rec.update({k: np.float64(cam[k]) for k in CAMERA_FIELDS})
    return rec

  @classmethod
  def decode(cls, record, num_classes: int = 19):
    out = {'image': codecs.decode_image(record['image']),
           'label': remap_classes(np.asarray(record['label']), num_classes)}
    if 'disparity_code' in record:
      p = np.asarray(record['disparity_code']).astype(np.float64)
      disp = np.where(p > 1, (p - 1.0) / 256.0, 0.0).astype(np.float32)
      out['disparity'] = disp
      cam = {k: float(record[k]) for k in CAMERA_FIELDS}
      out['depth'] = cityscapes.disparity_to_depth(disp, cam['baseline'], cam['fx'])
      out['valid'] = out['depth'] > 0
      out.update(cityscapes.derived_targets(out, cam))
    return out
