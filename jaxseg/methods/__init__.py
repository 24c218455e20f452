"""Method registry: `config.method` -> the method's class (imported lazily).

Adding a method: a package `jaxseg/methods/<name>/` (model.py, loss.py, method.py, checks.py),
one line here and one config file `configs/<name>.py` (docs/design.md walks through it).
"""
import importlib

METHODS = {
    'deeplabv2': 'jaxseg.methods.deeplabv2.method:DeepLabV2Method',
    'padnet': 'jaxseg.methods.padnet.method:PadNetMethod',
    'ctkt': 'jaxseg.methods.ctkt.method:CTKTMethod',
    'pspnet': 'jaxseg.methods.pspnet.method:PSPNetMethod',
    'adaptsegnet': 'jaxseg.methods.adaptsegnet.method:AdaptSegNetMethod',
}


def get_method_class(name: str):
  if name not in METHODS:
    raise ValueError(f'config.method={name!r} is not a known method; known: {sorted(METHODS)}')
  module, cls = METHODS[name].split(':')
  return getattr(importlib.import_module(module), cls)


def build_method(config, meta: dict, axis_name: str | None = None):
  return get_method_class(config.method)(config, meta, axis_name=axis_name)
