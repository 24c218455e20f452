"""Writes tests/configs/config_snapshot.json: every variant of configs/deeplabv2.py and
configs/padnet.py as plain JSON (tests/configs/test_configs.py compares the configs with it).

  python tests/configs/snapshot.py

Made once from the configs before they took their trainer block from `configlib.trainer` and
their variants from `configlib.parse_variants`; run it again only for an intended change.
"""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from jaxseg.config_files import load_config  # pylint: disable=wrong-import-position

PADNET_FLAGS = ('single_depth', 'single_parsing', 'multitask', 'none', 'A', 'B', 'C')
SPECS = (['configs/deeplabv2.py'] +
         [f'configs/deeplabv2.py:{v}' for v in ('smoke', 'voc', 'cityscapes', 'ade20k', 'gta5',
                                                 'synthia')] +
         ['configs/padnet.py'] +
         [f'configs/padnet.py:{v}' for v in ('smoke', 'nyuv2', 'cityscapes') + PADNET_FLAGS] +
         [f'configs/padnet.py:smoke,{v}' for v in PADNET_FLAGS] +
         ['configs/padnet.py:nyuv2,single_depth', 'configs/padnet.py:cityscapes,B'])
PATH = os.path.join(REPO, 'tests', 'configs', 'config_snapshot.json')


def as_json(spec: str):
  return json.loads(json.dumps(load_config(spec).to_dict()))


if __name__ == '__main__':
  with open(PATH, 'w') as f:
    json.dump({s: as_json(s) for s in SPECS}, f, indent=1, sort_keys=True)
    f.write('\n')
  print(f'wrote {PATH}: {len(SPECS)} configs')
