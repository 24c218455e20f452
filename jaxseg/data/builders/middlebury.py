"""Middlebury 2005/2006 (8-bit disparity + dmin) and 2014 (PFM): image, disparity, depth.

Reader splits are the folders under the root (FullSize, HalfSize, ThirdSize, trainingH, ...).
"""
import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import middlebury


class JaxsegMiddlebury(base.Builder):
  """Middlebury stereo scenes as depth maps, from the publisher's layout."""

  FORMAT = middlebury
  MANUAL_DOWNLOAD_INSTRUCTIONS = middlebury.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name='default')]

  def fields(self):
    return {'image': codecs.image_feature(), 'disparity': codecs.array_feature(np.float32, 2),
            'depth': codecs.array_feature(np.float32, 2),
            'valid': codecs.array_feature(np.bool_, 2)}
