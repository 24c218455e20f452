"""XLA's per-op profile of one variant's step (`python -m jaxseg.bench --profile`): the optimised
HLO parsed into instructions, each profiled op put in a category, and the table."""
import glob
import os
import re
import shutil
import time
from typing import Dict

import jax

from jaxseg.bench.measure import method_state_batch

_INSTR = re.compile(r'^\s*(?:ROOT )?%([\w.-]+) = (\([^=]*?\)|\S+) ([\w-]+)\((.*)$')
_COMP = re.compile(r'^(?:ENTRY )?%([\w.-]+) .*\{\s*$')


def parse_hlo(text: str) -> Dict[str, dict]:
  """Instruction name -> {opcode, shape, op_name, calls, dim_labels, ynn, comp, body_ops}, from
  `compiled.as_text()`; `body_ops` lists the opcodes inside a fusion's computation."""
  instrs, comps, comp = {}, {}, None
  for line in text.splitlines():
    m = _COMP.match(line)
    if m and ' = ' not in line.split('{')[0]:
      comp = m.group(1)
      comps[comp] = []
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    name, shape, opcode, rest = m.groups()
    get = lambda key: (re.search(key + r'=([^,\s}]+)', rest) or [None, None])[1]
    op_name = re.search(r'op_name="([^"]*)"', rest)
    instrs[name] = {'opcode': opcode, 'shape': shape, 'comp': comp,
                    'op_name': op_name.group(1) if op_name else '',
                    'calls': (get('calls') or '').lstrip('%'), 'dim_labels': get('dim_labels'),
                    'ynn': '__ynn_fusion' in rest}
    if comp is not None:
      comps[comp].append((opcode, instrs[name]['dim_labels']))
  for ins in instrs.values():
    body = comps.get(ins['calls'], [])
    ins['body_ops'] = [op for op, _ in body]
    ins['dim_labels'] = ins['dim_labels'] or next((d for op, d in body if d), None)
  return instrs


def op_category(ins: dict) -> str:
  """Coarse class of an HLO instruction for the profile summary."""
  ops = [ins['opcode']] + list(ins.get('body_ops', []))
  back = 'transpose(' in ins.get('op_name', '')
  if 'convolution' in ops:
    labels = ins.get('dim_labels') or ''
    if labels.split('->')[-1].startswith('01'):
      return 'conv weight-grad'
    return 'conv input-grad' if back else 'conv forward'
  if 'dot' in ops:
    return 'dot (backward)' if back else 'dot (forward)'
  if 'reduce' in ops or 'reduce-window' in ops or 'select-and-scatter' in ops:
    return 'reduction fusion' if ins['opcode'] == 'fusion' else 'reduction'
  if ins['opcode'] in ('transpose', 'copy') or set(ops) <= {'transpose', 'copy', 'parameter',
                                                            'bitcast', 'fusion'}:
    return 'transpose/copy'
  if {'concatenate', 'pad', 'slice', 'dynamic-slice', 'dynamic-update-slice'} & set(ops):
    return 'pad/slice/concat'
  if ins['opcode'] == 'fusion':
    return 'elementwise fusion'
  return ins['opcode']


def profile_ops(config, what: str = 'train', steps: int = 1, warmup: int = 1,
                logdir: str = '/tmp/jaxseg_profile') -> dict:
  """XLA's per-op (thunk) profile of one variant's step via `jax.profiler`: returns
  {'step_s', 'ops': [{name, category, ms, opcode, shape, op_name}], 'categories': {cat: ms}}
  with per-step milliseconds summed over every thread. The optimised HLO is written next to
  `logdir` as `<logdir>.hlo.txt`."""
  _, method, state, batch = method_state_batch(config)
  fn = jax.jit(method.train_step if what == 'train' else method.predict_step)
  compiled = fn.lower(state, batch).compile()
  hlo = compiled.as_text()
  with open(os.path.join(os.path.dirname(logdir.rstrip('/')) or '.',
                         os.path.basename(logdir.rstrip('/')) + '.hlo.txt'), 'w') as f:
    f.write(hlo)  # <logdir>.hlo.txt: the optimised HLO the op names refer to
  instrs = parse_hlo(hlo)
  run = lambda: jax.block_until_ready(compiled(state, batch))
  for _ in range(warmup):
    run()
  shutil.rmtree(logdir, ignore_errors=True)
  jax.profiler.start_trace(logdir)
  t0 = time.perf_counter()
  for _ in range(steps):
    run()
  step_s = (time.perf_counter() - t0) / steps
  jax.profiler.stop_trace()
  path = sorted(glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True))[-1]
  data = jax.profiler.ProfileData.from_file(path)
  totals: Dict[str, float] = {}
  for plane in data.planes:
    for line in plane.lines:
      for ev in line.events:
        stats = dict(ev.stats)
        op = stats.get('hlo_op')
        if op and not ev.name.startswith('end:'):
          totals[op] = totals.get(op, 0.0) + ev.duration_ns / 1e6 / steps
  ops, cats = [], {}
  for name, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
    ins = instrs.get(name, {'opcode': '?', 'shape': '?', 'op_name': '', 'body_ops': []})
    cat = op_category(ins)
    cats[cat] = cats.get(cat, 0.0) + ms
    ops.append({'name': name, 'category': cat, 'ms': ms, 'opcode': ins['opcode'],
                'shape': ins['shape'], 'op_name': ins['op_name'][-90:],
                'ynn': ins.get('ynn', False)})
  return {'step_s': step_s, 'ops': ops,
          'categories': dict(sorted(cats.items(), key=lambda kv: -kv[1])),
          'op_ms_total': sum(totals.values())}


def format_profile(prof: dict, top: int = 30) -> str:
  lines = [f"step {prof['step_s']:.3f} s; sum of op times {prof['op_ms_total']:.0f} ms",
           '', '| category | ms/step | share |', '|---|---|---|']
  total = prof['op_ms_total'] or float('nan')
  for cat, ms in prof['categories'].items():
    lines.append(f'| {cat} | {ms:.0f} | {100 * ms / total:.1f}% |')
  lines += ['', f'top {top} ops:', '| op | category | ms | shape | op_name |',
            '|---|---|---|---|---|']
  for o in prof['ops'][:top]:
    lines.append(f"| {o['name']}{' (ynn)' if o['ynn'] else ''} | {o['category']} | "
                 f"{o['ms']:.1f} | {o['shape'][:40]} | {o['op_name']} |")
  return '\n'.join(lines)
