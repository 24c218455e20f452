"""Readers for datasets in their publishers' on-disk layouts (NumPy only; no TF, no JAX).

Every dataset module exposes `EXPECTED_LAYOUT`, `list_examples(root, split, ...)` (validates the
layout; a missing file or directory raises `DatasetLayoutError` naming it) and
`read_example(entry) -> dict` of NumPy arrays: 'image' (H, W, 3) uint8 RGB, 'label' (H, W) uint8
with 255 = ignore, 'depth' (H, W) float32 metres with 0 = invalid, 'valid' (H, W) bool,
'normals' (H, W, 3) float32, 'contours' (H, W) uint8, as applicable.
"""

from jaxseg.data.formats import (ade20k, cityscapes, common, dsr, gta5, middlebury, nyuv2,
                                 sintel, synthia, tofmark, voc)
from jaxseg.data.formats.common import DatasetLayoutError

DATASETS = {
    'ade20k': ade20k,
    'cityscapes': cityscapes,
    'gta5': gta5,
    'middlebury': middlebury,
    'nyuv2': nyuv2,
    'sintel': sintel,
    'synthia': synthia,
    'tofmark': tofmark,
    'voc': voc,
}

__all__ = ['DATASETS', 'DatasetLayoutError', 'ade20k', 'cityscapes', 'common', 'dsr', 'gta5',
           'middlebury', 'nyuv2', 'sintel', 'synthia', 'tofmark', 'voc']
