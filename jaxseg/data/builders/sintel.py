"""MPI Sintel depth (.dpt) with the clean or final RGB pass."""
import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import sintel


class JaxsegSintel(base.Builder):
  """MPI Sintel depth training frames, from the publisher's layout."""

  FORMAT = sintel
  MANUAL_DOWNLOAD_INSTRUCTIONS = sintel.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [base.Config(name=p, list_kwargs={'image_pass': p})
                     for p in ('clean', 'final')]

  def fields(self):
    return {'image': codecs.image_feature(), 'depth': codecs.array_feature(np.float32, 2),
            'valid': codecs.array_feature(np.bool_, 2)}
