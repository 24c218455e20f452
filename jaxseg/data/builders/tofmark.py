"""ToFMark (Books, Devil, Shark): ToF depth input, ground-truth depth, intensity guide.

The raw file format is unverified, so the reader and file names are options: configs are
named after the reader ('png16_mm', 'npy_mm', 'mat_mm'); `config_for` adds a hash of custom
file names so a different choice never reuses a copy prepared with another.
"""
import hashlib
import json

import numpy as np

from jaxseg.data.builders import base, codecs
from jaxseg.data.formats import tofmark


def config_for(reader: str = 'png16_mm', files: dict | None = None) -> base.Config:
  kwargs = {'reader': reader}
  name = reader
  if files:
    kwargs['files'] = dict(files)
    name += '-' + hashlib.sha1(json.dumps(kwargs['files'], sort_keys=True).encode()
                               ).hexdigest()[:8]
  return base.Config(name=name, list_kwargs=kwargs)


class JaxsegTofmark(base.Builder):
  """ToFMark depth super-resolution test scenes."""

  FORMAT = tofmark
  IMAGE_PATH_KEY = 'guide'
  MANUAL_DOWNLOAD_INSTRUCTIONS = tofmark.EXPECTED_LAYOUT
  BUILDER_CONFIGS = [config_for(r) for r in ('png16_mm', 'npy_mm', 'mat_mm')]

  def fields(self):
    files = dict(tofmark.DEFAULT_FILES, **self.builder_config.list_kwargs.get('files', {}))
    f = {}
    if files['guide']:
      f['image'] = codecs.image_feature()
    if files['depth']:
      f.update(depth=codecs.array_feature(np.float32, 2),
               valid=codecs.array_feature(np.bool_, 2))
    if files['depth_lr']:
      f['depth_lr'] = codecs.array_feature(np.float32, 2)
    return f
