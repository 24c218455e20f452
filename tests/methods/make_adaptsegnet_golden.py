"""Writes tests/methods/data/adaptsegnet_golden.npz from the PyTorch reference (run once; torch).

  PYTHONPATH=.:tests python tests/methods/make_adaptsegnet_golden.py

Contents (float64): `d_logits` (FCDiscriminator forward with the case's level2 weights on
`case.d_input()`), `losses` (STEPS, 6) of the re-enacted release iteration, and per array a
`summary` ([L2 norm, two fixed projections]) of the updated parameters minus the initial ones
(`update/<path>`) and of the updated BN running statistics (`stats/<path>`), for the clean
optimizer and, under `dup/`, the release's duplicated SGD list.
"""
import os

import numpy as np
import torch

from methods import adaptsegnet_case as case


def d_forward_case():
  params = case.flat(case.initial_state().params)
  d_params = {k.split('/', 2)[2]: v for k, v in params.items()
              if k.startswith('discriminator/level2/')}
  x = case.d_input()
  d = case.torch_discriminator(case.NUM_CLASSES, case.NDF)
  case.torch_d_load(d, d_params)
  with torch.no_grad():
    y = d(torch.from_numpy(np.transpose(x, (0, 3, 1, 2)))).numpy()
  return np.transpose(y, (0, 2, 3, 1))


def main():
  out = {}
  out['d_logits'] = d_forward_case()
  for prefix, dup in (('', False), ('dup/', True)):
    ref = case.reference(torch_duplicates=dup)
    out[f'{prefix}losses'] = ref['losses']
    for key, value in case.summary(ref['updates']).items():
      out[f'{prefix}update/{key}'] = value
    for key, value in case.summary(ref['stats']).items():
      out[f'{prefix}stats/{key}'] = value
  path = os.path.join(os.path.dirname(__file__), 'data', 'adaptsegnet_golden.npz')
  np.savez_compressed(path, **out)
  print(f'wrote {path} ({os.path.getsize(path)} bytes, {len(out)} arrays)')


if __name__ == '__main__':
  main()
