"""Regenerates data/pspnet_golden.npz: outputs of the PyTorch reference PSPNet (torch_pspnet.py).

Run once with torch installed, from tests/: ``python -m convert.make_pspnet_goldens``. For each
variant (semseg, mmseg) the NumPy-seeded weights of ``pspnet_fixtures.state_dict`` are loaded
with ``load_state_dict(strict=True)`` and the net runs on ``pspnet_fixtures.image()`` in
inference mode (``<variant>/logits``) and in training mode (batch statistics, dropout 0:
``<variant>/train_logits``, ``<variant>/train_aux_logits``, and the updated running statistics
in ``<variant>/running/<torch key>``). Arrays are NHWC float32.
"""
import numpy as np
import torch

from convert import pspnet_fixtures as fx
from convert.torch_pspnet import TorchPSPNet


def torch_outputs(variant: str, x: np.ndarray, train: bool):
  """(outputs NHWC, state_dict after the pass) of the reference with the seeded weights."""
  net = TorchPSPNet(fx.CLASSES, **fx.VARIANTS[variant])
  sd = fx.semseg_state_dict(fx.flax_model(variant))
  missing, unexpected = net.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()},
                                            strict=False)
  assert not unexpected and all(k.endswith('num_batches_tracked') for k in missing), (
      missing, unexpected)
  net.train(train)
  with torch.no_grad():
    out = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
  out = {k: v.numpy().transpose(0, 2, 3, 1) for k, v in out.items()}
  return out, {k: v.numpy() for k, v in net.state_dict().items()}


def main():
  torch.set_num_threads(1)
  arrays = {}
  for variant in fx.VARIANTS:
    x = fx.image()
    out, _ = torch_outputs(variant, x, train=False)
    arrays[f'{variant}/logits'] = out['logits']
    out, state = torch_outputs(variant, x, train=True)
    arrays[f'{variant}/train_logits'] = out['logits']
    arrays[f'{variant}/train_aux_logits'] = out['aux_logits']
    for k, v in state.items():
      if k.endswith(('running_mean', 'running_var')):
        arrays[f'{variant}/running/{k}'] = v
  np.savez_compressed(fx.GOLDEN_PATH, **arrays)
  print(f'wrote {fx.GOLDEN_PATH}: {len(arrays)} arrays')


if __name__ == '__main__':
  main()
