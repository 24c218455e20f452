"""GTA5 (Playing for Data): images + palette labels (Cityscapes label ids -> 19 trainIds)."""
import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import gta5


class JaxsegGta5(base.Builder):
  """GTA5, every frame (the domain-adaptation protocol), from the publisher's layout."""

  FORMAT = gta5
  MANUAL_DOWNLOAD_INSTRUCTIONS = gta5.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name='default')]

  def fields(self):
    return {'image': codecs.image_feature(), 'label': codecs.array_feature(np.uint8, 2)}
