"""Method registry: `config.method` -> tenant class (imported lazily)."""
import importlib

METHODS = {
    'segmentation': 'jaxseg.methods.segmentation:SegmentationMethod',
    'padnet': 'jaxseg.methods.padnet:PadNetMethod',
    'dsr': 'jaxseg.methods.dsr:DsrMethod',
}


def get_method_class(name: str):
  if name not in METHODS:
    raise ValueError(f'config.method={name!r} is not a known method; known: {sorted(METHODS)}')
  module, cls = METHODS[name].split(':')
  return getattr(importlib.import_module(module), cls)


def build_method(config, meta: dict, axis_name: str | None = None):
  return get_method_class(config.method)(config, meta, axis_name=axis_name)
