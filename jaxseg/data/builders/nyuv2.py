"""NYU Depth v2 labelled set (v7.3 .mat): image, metric depth, normals, labels, contours.

Configs: '40' and '13' (classes; labels and contours included) and 'depth' (no labels: the
depth super-resolution protocol). Normals and contours are derived by the reader
(`formats.nyuv2`, derivation in its docstring) and stored, since deriving them costs ~0.25 s a
frame.
"""
import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import nyuv2


class JaxsegNyuv2(base.Builder):
  """NYU Depth v2 labelled subset, from the publisher's files."""

  FORMAT = nyuv2
  MANUAL_DOWNLOAD_INSTRUCTIONS = nyuv2.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name='40', list_kwargs={'num_classes': 40}),
                     base.Config(name='13', list_kwargs={'num_classes': 13}),
                     base.Config(name='depth', list_kwargs={'num_classes': None})]

  def fields(self):
    f = {'image': codecs.image_feature(), 'depth': codecs.array_feature(np.float32, 2),
         'valid': codecs.array_feature(np.bool_, 2),
         'normals': codecs.array_feature(np.float32, 2, channels=3)}
    if self.builder_config.list_kwargs['num_classes']:
      f.update(label=codecs.array_feature(np.uint8, 2),
               contours=codecs.array_feature(np.uint8, 2))
    return f
