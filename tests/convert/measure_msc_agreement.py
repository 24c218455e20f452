"""Measures jaxseg's MSC against deeplab-pytorch's at full size (not a test; minutes on a CPU).

  python tests/convert/measure_msc_agreement.py [--sizes 321 513] [--width 64]

Random weights (He-scaled convs, random BN statistics; tests/convert/torch_reference.randomize) in
the ResNet-101 DeepLab v2 with deeplab-pytorch's key names, converted with layout
``deeplab_pytorch``; MSC scales (1.0, 0.5, 0.75). Prints ||jax - torch|| / ||torch|| of the base
logits and of the MSC logits under each resize rule ('size' = jaxseg before issue 12).
"""
import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.dirname(HERE)]  # repo, tests

# pylint: disable=g-import-not-at-top,wrong-import-position
import jax
import jax.numpy as jnp
import numpy as np
import torch

from convert.convert_helpers import rel_err
from convert.torch_deeplab_pytorch import DeepLabPytorchMSC, DeepLabPytorchV2
from convert.torch_reference import randomize
from jaxseg.convert import load_into
from jaxseg.models.deeplabv2 import DeepLabV2, MultiScaleInput

RULES = ('size', 'pytorch_scale_factor', 'caffe_interp')


def main(argv=None):
  p = argparse.ArgumentParser()
  p.add_argument('--sizes', type=int, nargs='+', default=[321, 513])
  p.add_argument('--width', type=int, default=64)
  p.add_argument('--classes', type=int, default=21)
  args = p.parse_args(argv)
  msc = DeepLabPytorchMSC(randomize(DeepLabPytorchV2(args.classes, blocks=(3, 4, 23, 3),
                                                     width=args.width), seed=0)).eval()
  path = os.path.join(tempfile.mkdtemp(), 'msc.pth')
  torch.save(msc.state_dict(), path)
  base = DeepLabV2(num_classes=args.classes, depth=101, width=args.width, bn_mode='frozen')
  for size in args.sizes:
    x = np.random.default_rng(size).normal(size=(1, size, size, 3)).astype(np.float32)
    t0 = time.time()
    with torch.no_grad():
      tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
      want_base = msc.base(tx).numpy().transpose(0, 2, 3, 1)
      want = msc(tx).numpy().transpose(0, 2, 3, 1)
    t_torch = time.time() - t0
    model = MultiScaleInput(base=base, scales=(1.0, 0.5, 0.75))
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                            jax.ShapeDtypeStruct(x.shape, jnp.float32))
    zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    variables, _ = load_into(zeros, path, 'deeplab_pytorch', prefix='base')

    @jax.jit
    def run(variables, x):
      outs = {r: MultiScaleInput(base=base, scales=(1.0, 0.5, 0.75), resize_rule=r).apply(
          variables, x, train=False) for r in RULES}
      return {r: o['logits'] for r, o in outs.items()}, outs['size']['scale_logits'][0]

    t0 = time.time()
    got, got_base = jax.device_get(run(variables, jnp.asarray(x)))
    t_jax = time.time() - t0
    print(f'{size}x{size} (torch {t_torch:.0f} s, jax compile+run {t_jax:.0f} s): '
          f'base {rel_err(got_base, want_base):.2e}; MSC ' +
          ', '.join(f'{r} {rel_err(got[r], want):.2e}' for r in RULES), flush=True)


if __name__ == '__main__':
  main()
