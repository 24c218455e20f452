"""``python -m jaxseg.convert --from=torch --layout=deeplabv2 FILE.pth OUTDIR/``.

Writes ``OUTDIR/weights.npz`` (keys like ``params/backbone/conv1/kernel``, with the layout's default
prefix applied unless ``--prefix`` is given) and prints a report. ``config.init_from`` may point at
OUTDIR, at the .npz, or directly at the .pth (see ``jaxseg.convert.load_pretrained``).
"""
import argparse
import collections
import pickle
import sys
import zipfile
from typing import List, Optional

import numpy as np

from jaxseg.convert.formats import (read_npz, read_safetensors, read_weights, unwrap_state_dict,
                                    write_converted)
from jaxseg.convert.layouts import LAYOUTS, convert_flat, get_layout
from jaxseg.convert.load import add_prefix
from jaxseg.convert.torch_pickle import TorchNeededError, read_pth


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog='python -m jaxseg.convert', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--from', dest='source_format', default='auto',
                 choices=('auto', 'torch', 'npz', 'safetensors'),
                 help='input format (auto: by file extension)')
  p.add_argument('--layout', required=True, choices=sorted(LAYOUTS))
  p.add_argument('--prefix', default=None,
                 help="Flax module path to put the tree under (default: the layout's, "
                      "'backbone' for torchvision_resnet, '' otherwise)")
  p.add_argument('--include-fc', action='store_true', help='keep the torchvision fc layer')
  p.add_argument('--no-torch', action='store_true', help='use the torch-free .pth reader')
  p.add_argument('file')
  p.add_argument('outdir')
  return p.parse_args(argv)


def read(args: argparse.Namespace):
  use_torch = False if args.no_torch else None
  readers = {'torch': lambda p: read_pth(p, use_torch=use_torch), 'npz': read_npz,
             'safetensors': read_safetensors}
  if args.source_format == 'auto':
    return read_weights(args.file, use_torch=use_torch)
  return unwrap_state_dict(readers[args.source_format](args.file), args.file)


def main(argv: Optional[List[str]] = None) -> int:
  args = parse_args(argv)
  try:
    state = read(args)
    flat, ignored = convert_flat(state, args.layout, include_fc=args.include_fc)
    prefix = get_layout(args.layout).default_prefix if args.prefix is None else args.prefix
    flat = add_prefix(flat, prefix)
    out = write_converted(flat, args.outdir)
  except (ValueError, OSError, KeyError, TorchNeededError, pickle.UnpicklingError,
          zipfile.BadZipFile) as e:
    print(f'error: {e}', file=sys.stderr)  # one message, no traceback; nothing was written
    return 2

  modules = collections.Counter('/'.join(k.split('/')[:2]) for k in flat)
  n_values = sum(int(np.prod(v.shape)) for v in flat.values())
  print(f'read {len(state)} tensors from {args.file} (layout {args.layout}, prefix {prefix!r})')
  print(f'wrote {len(flat)} arrays, {n_values:,} values to {out}')
  for name, count in sorted(modules.items()):
    print(f'  {name}: {count} arrays')
  tracked = [k for k in ignored if k.endswith('num_batches_tracked')]
  other = [k for k in ignored if k not in tracked]
  if tracked:
    print(f'ignored {len(tracked)} num_batches_tracked entries')
  if other:
    print(f'ignored {len(other)} keys: {other}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
