"""TFDS builders (ArrayRecord, no TensorFlow) for the datasets in their publishers' layouts.

Each builder reads with its `jaxseg.data.formats` module from the manual directory (the
dataset root, `config.dataset.data_dir`) and is prepared once by `prepare.prepare` into
`<config.dataset.prepared_dir or ~/.cache/jaxseg/tfds>/<builder>/<config>/<version>/`.
"""
from jaxseg.data.builders import (ade20k, cityscapes, gta5, middlebury, nyuv2, sintel, synthia,
                                  tofmark, voc)
from jaxseg.data.builders.base import Builder, Config
from jaxseg.data.builders.prepare import DEFAULT_PREPARED_DIR, Prepared, prepare

BUILDERS = {
    'ade20k': ade20k.JaxsegAde20k,
    'cityscapes': cityscapes.JaxsegCityscapes,
    'gta5': gta5.JaxsegGta5,
    'middlebury': middlebury.JaxsegMiddlebury,
    'nyuv2': nyuv2.JaxsegNyuv2,
    'sintel': sintel.JaxsegSintel,
    'synthia': synthia.JaxsegSynthia,
    'tofmark': tofmark.JaxsegTofmark,
    'voc': voc.JaxsegVoc,
}

__all__ = ['BUILDERS', 'Builder', 'Config', 'DEFAULT_PREPARED_DIR', 'Prepared', 'prepare']
