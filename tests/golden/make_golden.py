"""Writes tests/golden/*.npz: the PyTorch references' outputs at toy size, so that the ResNet,
DeepLab v2, multi-level DeepLab and PAD-Net equivalence checks (tests/golden/test_golden.py) also
run where torch is not installed.

  python tests/golden/make_golden.py      # needs torch; run once, commit the .npz files

Each file holds the weights (rounded to float16 precision and stored as float16, so the float32
nets on both sides use exactly the stored values), the input and the torch outputs in float32:
  resnet.npz     TorchResNet (torchvision layout, width 2, one block per stage), 33x33 input:
                 'state/<torch key>', 'image' (1, 33, 33, 3), 'eval/<map>' / 'train/<map>' NHWC
                 for stem, layer1..4, and 'train_state/<running stat key>' after the train pass.
  deeplabv2.npz  MSDeepLab(TorchDeepLabV2) (Scale.-prefixed keys, 5 classes), 33x33: 'eval/logits',
                 'train/logits' (BatchNorm in train mode) and 'train_state/...'.
  multilevel.npz TorchDeepLabV2(multi_level, aspp_branches=2): 'eval/logits', 'eval/aux_logits'.
  padnet.npz     the torch PAD-Net of configs/padnet.py:smoke,C (width 4, N=8) at 20x20 with JAX variables
                 'variables/<flax path>' copied in (torch_padnet.load_flax_variables), a batch
                 'batch/<key>' and 'eval/...', 'train/...' outputs (NHWC / NHW) and 'loss/<term>'.
"""
import os
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, 'tests'))

# pylint: disable=wrong-import-position
import jax
from flax import traverse_util

from jaxseg.bench import torch_refs
from jaxseg.bench.torch_padnet import load_flax_variables
from jaxseg.bench.torch_padnet_loss import padnet_loss
from jaxseg.bench.torch_resnet import MSDeepLab, TorchDeepLabV2, TorchResNet, randomize
from jaxseg.config_files import load_config
from jaxseg.data import sources
from jaxseg.methods import build_method

HERE = os.path.dirname(os.path.abspath(__file__))
WIDTH, CLASSES, SIZE = 2, 5, 33
# PAD-Net at 20x20 (not a multiple of 8: the front-end is 3x3, the final outputs are resized).
PADNET = dict(spec='configs/padnet.py:smoke,C', size=20, batch=1,
              model=dict(width=4, features=8, aggregate_features=4))


def round_to_half(net):
  with torch.no_grad():
    for t in list(net.parameters()) + list(net.buffers()):
      if t.is_floating_point():
        t.copy_(t.half().float())
  return net


def nhwc(out):
  return {k: (v.detach().numpy().transpose(0, 2, 3, 1) if v.ndim == 4 else v.detach().numpy())
          for k, v in out.items()}


def state_arrays(net, prefix):
  return {f'{prefix}/{k}': (v.numpy().astype(np.float16) if v.is_floating_point() else v.numpy())
          for k, v in net.state_dict().items()}


def image(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float16).astype(np.float32)


def torch_passes(net, x, modes=('eval', 'train')):
  """{'<mode>/<output>': NHWC} for each mode, and 'train_state/<key>' after the train pass."""
  out = {}
  t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  for mode in modes:
    net.train(mode == 'train')
    with torch.no_grad():
      out.update({f'{mode}/{k}': v for k, v in nhwc(net(t)).items() if k != 'upsampled'})
  if 'train' in modes:
    out.update({f'train_state/{k}': v.numpy() for k, v in net.state_dict().items()
                if 'running' in k})
  return out


def save(name, arrays):
  path = os.path.join(HERE, name)
  np.savez_compressed(path, **arrays)
  print(f'{path}: {os.path.getsize(path) / 1024:.0f} KB')


def make_convert_nets():
  x = image((1, SIZE, SIZE, 3), 0)
  nets = {
      'resnet.npz': randomize(TorchResNet(width=WIDTH, layout='pytorch'), seed=1),
      'deeplabv2.npz': randomize(MSDeepLab(TorchDeepLabV2(CLASSES, width=WIDTH)), seed=2),
      'multilevel.npz': randomize(TorchDeepLabV2(CLASSES, width=WIDTH, multi_level=True,
                                                 aspp_branches=2), seed=3),
  }
  for name, net in nets.items():
    net = round_to_half(net)
    arrays = state_arrays(net, 'state')  # before the train pass moves the running statistics
    modes = ('eval',) if name == 'multilevel.npz' else ('eval', 'train')
    arrays.update(torch_passes(net, x, modes), image=x.astype(np.float16))
    save(name, arrays)


def make_padnet():
  c = load_config(PADNET['spec'])
  b, s = PADNET['batch'], PADNET['size']
  c.batch_size = b
  c.dataset.augment.crop_size = (s, s)
  c.model.update(PADNET['model'])
  method = build_method(c, sources.make_source(c.dataset, 'train').meta)
  k = method.num_classes
  rng = np.random.default_rng(0)
  img = image((b, s, s, 3), 1)
  shapes = jax.eval_shape(lambda: method.model.init(jax.random.PRNGKey(0), img[:1], train=False))
  flat = {}
  for path, sh in traverse_util.flatten_dict(shapes).items():
    if path[-1] == 'kernel':
      v = rng.normal(size=sh.shape) * np.sqrt(2.0 / np.prod(sh.shape[:-1]))
    elif path[-1] in ('scale', 'var'):
      v = rng.uniform(0.5, 1.5, sh.shape)
    else:
      v = rng.normal(size=sh.shape) * 0.1
    flat[path] = np.asarray(v, np.float16).astype(np.float32)
  variables = traverse_util.unflatten_dict(flat)
  half = lambda a: a.astype(np.float16).astype(np.float32)  # stored as float16, exactly
  batch = {'depth': half(rng.uniform(0.5, 10, (b, s, s))),
           'label': rng.integers(0, k, (b, s, s)).astype(np.uint8),
           'normals': half(rng.normal(size=(b, s, s, 3))),
           'contours': (rng.random((b, s, s)) < 0.1).astype(np.uint8),
           'valid': np.ones((b, s, s), bool)}
  batch['label'][0, :4] = 255
  batch['valid'][0, :, :5] = False
  batch['depth'][0, -3:] = 0.0
  tb = torch_refs.from_config(c, 'train', num_classes=k)
  load_flax_variables(tb.model, variables)
  t_img = torch.from_numpy(img.transpose(0, 3, 1, 2).copy())
  nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
  tbatch = {'depth': torch.from_numpy(batch['depth']), 'normals': nchw(batch['normals']),
            'label': torch.from_numpy(batch['label']).long(),
            'contours': torch.from_numpy(batch['contours']).float(),
            'valid': torch.from_numpy(batch['valid'])}
  arrays = {'/'.join(('variables',) + p): v.astype(np.float16) for p, v in flat.items()}
  arrays.update({f'batch/{key}': v.astype(np.float16) if v.dtype == np.float32 else v
                 for key, v in batch.items()}, image=img.astype(np.float16))
  with torch.no_grad():
    for mode in ('eval', 'train'):
      tb.model.train(mode == 'train')
      out = tb.model(t_img)
      arrays.update({f'{mode}/{key}': v for key, v in nhwc(
          {key: out[key] for key in ('logits', 'depth')}).items()})
      arrays.update({f'{mode}/intermediate/{key}': v for key, v in nhwc(
          out['intermediate']).items()})
      if mode == 'train':
        total, terms = padnet_loss(out, tbatch, **tb.loss_kwargs)
        arrays.update({f'loss/{key}': np.float32(v) for key, v in terms.items()},
                      **{'loss/total': np.float32(total)})
  save('padnet.npz', arrays)


if __name__ == '__main__':
  torch.set_num_threads(1)
  make_convert_nets()
  make_padnet()
