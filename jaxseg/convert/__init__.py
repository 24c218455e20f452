"""Pretrained-weight conversion: PyTorch / npz / safetensors files -> Flax variables.

``read_weights(path)`` reads a file into ``{torch_key: ndarray}`` (torch optional for zip-format
``.pth``); ``convert(state_dict, layout)`` gives ``{'params': ..., 'batch_stats': ...}``;
``load_pretrained(path, layout)`` gives the flat ``{'params/...': array}`` dict at the model root;
``load_into(variables, path, layout)`` merges it into initialised variables with strict checks.
CLI: ``python -m jaxseg.convert --from=torch --layout=deeplabv2 FILE.pth OUTDIR/`` writes
``OUTDIR/weights.npz`` (keys '/'-joined Flax paths, collection first).
"""
from jaxseg.convert.formats import (CONVERTED_FILE, read_npz, read_safetensors, read_weights,
                                    unwrap_state_dict)
from jaxseg.convert.layouts import LAYOUTS, convert, convert_flat, flatten, unflatten
from jaxseg.convert.load import LoadReport, add_prefix, load_into, load_pretrained
from jaxseg.convert.torch_pickle import TorchNeededError, read_pth, read_zip_pth

__all__ = [
    'CONVERTED_FILE', 'LAYOUTS', 'LoadReport', 'TorchNeededError', 'add_prefix', 'convert',
    'convert_flat', 'flatten', 'load_into', 'load_pretrained', 'read_npz', 'read_pth',
    'read_safetensors', 'read_weights', 'read_zip_pth', 'unflatten', 'unwrap_state_dict',
]
