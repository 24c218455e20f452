"""Regenerates data/tiny_state_dict.pth (torch.save zip format) and data/tiny_expected.npz.

Run once with torch installed: ``python tests/convert/make_fixtures.py``. The .pth lets the
torch-free reader be tested where torch is absent; the .npz holds the expected arrays (bfloat16
stored as float32) and the expected dtype names under ``__dtypes__``.
"""
import collections
import os

import numpy as np
import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def main():
  g = torch.Generator().manual_seed(0)
  base = torch.randn(4, 5, generator=g)
  sd = collections.OrderedDict([
      ('module.conv.weight', torch.randn(2, 1, 3, 3, generator=g)),
      ('module.bn.running_var', torch.rand(2, generator=g) + 0.5),
      ('module.bn.num_batches_tracked', torch.tensor(11)),
      ('module.half', torch.randn(3, generator=g).half()),
      ('module.bf16', torch.randn(2, 2, generator=g).bfloat16()),
      ('module.transposed', torch.randn(2, 3, generator=g).t()),
      ('module.view', base[1:3, ::2]),  # storage offset and strides
      ('module.param', torch.nn.Parameter(torch.ones(2))),
  ])
  os.makedirs(HERE, exist_ok=True)
  torch.save({'state_dict': sd, 'epoch': 5}, os.path.join(HERE, 'tiny_state_dict.pth'))
  expected = {k[len('module.'):]: v.detach().float().numpy() if v.dtype == torch.bfloat16
              else v.detach().numpy() for k, v in sd.items()}
  dtypes = np.array([f'{k[len("module."):]}={str(v.dtype)[len("torch."):]}' for k, v in sd.items()])
  np.savez(os.path.join(HERE, 'tiny_expected.npz'), __dtypes__=dtypes, **expected)


if __name__ == '__main__':
  main()
