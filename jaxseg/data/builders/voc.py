"""PASCAL VOC 2012 segmentation (+ SBD for train_aug): JPEG images, class maps 0..20 / 255."""
import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import voc


class JaxsegVoc(base.Builder):
  """PASCAL VOC 2012 (train, val, trainval, train_aug), from the publisher's layout."""

  FORMAT = voc
  MANUAL_DOWNLOAD_INSTRUCTIONS = voc.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name='default')]

  def fields(self):
    return {'image': codecs.image_feature(), 'label': codecs.array_feature(np.uint8, 2)}
