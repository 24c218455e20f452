"""Test helpers for jaxseg.convert: error records, a safetensors writer, Flax -> torch key names."""
import json
import re
import struct
from typing import Dict, List, Mapping, Tuple

import numpy as np

from jaxseg.convert import flatten, layouts
from jaxseg.convert.formats import SAFETENSORS_DTYPES

RECORDS: List[Tuple[str, float]] = []  # (name, relative error), printed in the terminal summary


def rel_err(got, want) -> float:
  """||got - want|| / ||want|| in float64."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape, (got.shape, want.shape)
  return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


def check_close(name: str, got, want, tol: float = 1e-4) -> float:
  err = rel_err(got, want)
  RECORDS.append((name, err))
  print(f'REL_ERR {name}: {err:.3e}')
  assert err < tol, f'{name}: relative error {err:.3e} >= {tol}'
  return err


SAFETENSORS_NAMES = {np.dtype(v): k for k, v in SAFETENSORS_DTYPES.items()}


def write_safetensors(path: str, tensors: Mapping[str, np.ndarray], metadata=None) -> None:
  """Minimal safetensors writer (header padded to 8 bytes), for reader tests."""
  header, chunks, offset = {}, [], 0
  for name, arr in tensors.items():
    raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder('<')).tobytes()
    header[name] = {'dtype': SAFETENSORS_NAMES[arr.dtype], 'shape': list(arr.shape),
                    'data_offsets': [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)
  if metadata:
    header['__metadata__'] = metadata
  text = json.dumps(header).encode()
  text += b' ' * (-len(text) % 8)
  with open(path, 'wb') as f:
    f.write(struct.pack('<Q', len(text)) + text + b''.join(chunks))


_BN = {'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean', 'var': 'running_var'}


def torch_state_from_flax(variables, layout: str, key_prefix: str = '') -> Dict[str, np.ndarray]:
  """Inverse of the layout mapping (test-only): Flax variables -> torch-named state_dict."""
  spec = layouts.get_layout(layout)
  heads = {flax: torch for torch, flax in spec.heads}
  out = {}
  for key, value in flatten({c: variables[c] for c in ('params', 'batch_stats')}).items():
    value = np.asarray(value)
    parts = key.split('/')[1:]
    if spec.backbone_root and parts[0] == spec.backbone_root:
      parts = parts[1:]
    *mods, leaf = parts
    if mods[0] in heads:
      name = f'{heads[mods[0]]}.conv2d_list.{mods[1].split("_")[1]}'
    else:
      name = '.'.join(mods)
      name = re.sub(r'layer(\d)_(\d+)', r'layer\1.\2', name)
      name = name.replace('downsample_conv', 'downsample.0').replace('downsample_bn', 'downsample.1')
    is_bn = re.search(r'(^|\.)bn\d$|downsample\.1$', name) is not None
    if is_bn:
      out[f'{key_prefix}{name}.{_BN[leaf]}'] = value
    elif leaf == 'kernel':
      out[f'{key_prefix}{name}.weight'] = np.transpose(value, (3, 2, 0, 1)).copy()
    else:
      out[f'{key_prefix}{name}.bias'] = value
  return out
