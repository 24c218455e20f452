"""SYNTHIA-RAND-CITYSCAPES: RGB + 16-bit GT/LABELS (class id in R, read at full depth).

Labels are stored as the 19 Cityscapes trainIds; decode option `num_classes` 16 or 13 applies
the SYNTHIA protocols (equal to `formats.synthia` with that `num_classes`).
"""
import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.builders.cityscapes import remap_classes
from jaxseg.data.formats import synthia


class JaxsegSynthia(base.Builder):
  """SYNTHIA-RAND-CITYSCAPES, every frame, from the publisher's layout."""

  FORMAT = synthia
  MANUAL_DOWNLOAD_INSTRUCTIONS = synthia.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name='default', list_kwargs={'num_classes': 19})]

  def fields(self):
    return {'image': codecs.image_feature(), 'label': codecs.array_feature(np.uint8, 2)}

  @classmethod
  def decode(cls, record, num_classes: int = 16):
    return {'image': codecs.decode_image(record['image']),
            'label': remap_classes(np.asarray(record['label']), num_classes)}
