"""ADE20K SceneParsing (ADEChallengeData2016): 150 classes, 0 ('other') -> 255."""
import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import ade20k


class JaxsegAde20k(base.Builder):
  """ADE20K (training, validation), from the publisher's layout."""

  FORMAT = ade20k
  MANUAL_DOWNLOAD_INSTRUCTIONS = ade20k.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name='default')]

  def fields(self):
    return {'image': codecs.image_feature(), 'label': codecs.array_feature(np.uint8, 2)}
