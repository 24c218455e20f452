"""Config machinery shared by `configs/*.py`, the config checks and the tools.

  trainer(method, **fields)       the trainer block every config starts from (one place)
  parse_variants(arg, ...)        `configs/x.py:flag1,flag2,key=value` -> flags, typed values
  set_field(config, path, value)  config.<dotted path> = value (also on a locked ConfigDict)
  check_*(config, path, ...)      field checks whose errors name `config.<path>=<value>`
"""
import ast
from typing import Iterable, Mapping, Sequence

import ml_collections


class ConfigError(ValueError):
  """A config field has a bad value (the message names the field and what is allowed)."""


# -- the trainer block --------------------------------------------------------------------
def trainer(method: str, **fields) -> ml_collections.ConfigDict:
  """The fields every config shares (loop, checkpoints, devices, weights), then `fields`.

  `init_from` (pretrained weights, used only when the workdir has no checkpoint) is read with
  `init_layout`; `num_devices=0` means every device; `num_eval_examples=0` the whole split.
  """
  c = ml_collections.ConfigDict(dict(
      method=method, seed=0, batch_size=4, eval_batch_size=4, num_train_steps=1000,
      log_every_steps=25, eval_every_steps=250, checkpoint_every_steps=100, keep_checkpoints=3,
      data_threads=2, num_devices=0, init_from='', init_layout='plain', num_eval_examples=0,
      predict=dict(num_examples=4, input='')))
  c.update(fields)
  return c


def smoke(c, steps: int = 30, eval_every: int = 15, checkpoint_every: int = 10):
  """The toy-size trainer settings of every `:smoke` variant (in place)."""
  c.update(dict(batch_size=2, eval_batch_size=2, num_train_steps=steps, log_every_steps=5,
                eval_every_steps=eval_every, checkpoint_every_steps=checkpoint_every))
  c.predict.num_examples = 2


# -- variants -----------------------------------------------------------------------------
def _typed(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text  # a bare word: a string


def parse_variants(arg, flags: Iterable[str], keys: Mapping[str, type] | None = None,
                   config_file: str = 'config') -> tuple[list, dict]:
  """`'smoke,C,seed=3'` -> (['smoke', 'C'], {'seed': 3}).

  `flags`: the allowed flag names; `keys`: allowed `key=value` names -> their type (values are
  Python literals, bare words are strings). An unknown flag or key, or a value of the wrong
  type, raises ConfigError naming it and the allowed ones.
  """
  flags, keys = list(flags), dict(keys or {})
  out_flags, out_keys = [], {}
  for item in [a.strip() for a in (arg or '').split(',') if a.strip()]:
    if '=' in item:
      key, _, text = item.partition('=')
      if key not in keys:
        raise ConfigError(f'{config_file}: unknown variant key {key!r} in {item!r}; '
                          f'allowed keys: {sorted(keys) or "none"}')
      value = _typed(text)
      kind = keys[key]
      if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
      if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f'{config_file}: variant {item!r}: {key} must be a {kind.__name__}')
      out_keys[key] = value
    elif item in flags:
      out_flags.append(item)
    else:
      raise ConfigError(f'{config_file}: unknown variant {item!r}; allowed: {", ".join(flags)}'
                        + (f'; keys: {", ".join(sorted(keys))}' if keys else ''))
  return out_flags, out_keys


# -- fields -------------------------------------------------------------------------------
def get_field(config, path: str):
  """config.<dotted path>."""
  node = config
  for part in path.split('.'):
    node = node[part]
  return node


def set_field(config, path: str, value) -> None:
  """config.<path> = value for a dotted path ('model.features'), on a locked ConfigDict too."""
  node = config
  *parents, last = path.split('.')
  for name in parents:
    node = node[name]
  with config.unlocked():
    node[last] = value


def fail(path: str, value, why: str):
  raise ConfigError(f'config.{path}={value!r}: {why}')


def check_int(config, path: str, minimum: int):
  node = get_field(config, path)
  if isinstance(node, bool) or not isinstance(node, int) or node < minimum:
    fail(path, node, f'must be an integer >= {minimum}')
  return node


def check_choice(config, path: str, choices):
  node = get_field(config, path)
  if node not in choices:
    fail(path, node, f'must be one of {sorted(choices, key=str)}')
  return node


def check_positive(config, path: str, allow_zero: bool = False):
  node = get_field(config, path)
  if isinstance(node, bool) or not isinstance(node, (int, float)) or (
      node < 0 if allow_zero else node <= 0):
    fail(path, node, 'must be a number >= 0' if allow_zero else 'must be a number > 0')
  return node


def check_bool(config, path: str):
  node = get_field(config, path)
  if not isinstance(node, bool):
    fail(path, node, 'must be True or False')
  return node


def check_subset(config, path: str, allowed: Sequence):
  node = get_field(config, path)
  if not set(node) <= set(allowed):
    fail(path, tuple(node), f'must be a subset of {tuple(allowed)}')
  return node
