"""Expected memory per device of a recipe's train step, from XLA's own buffer assignment.

  python launch/memory_estimate.py --config=configs/deeplabv2.py:voc --per_device_batch=1

Compiles `method.train_step` for ONE device at the per-device batch (data parallelism keeps a
full replica of the state on every device, so one device's program is the per-device program,
less the all-reduce buffers, which are gradient-sized) and prints
`compiled.memory_analysis()`: arguments (state + batch), outputs, temporaries (activations kept
for the backward pass, workspace) and the peak estimate arguments + outputs - aliased + temps
(the state is donated, so its output aliases its input). Compiled for the host CPU backend: the
buffer sizes follow the program, not the chip, but GPU/TPU compilers fuse and rematerialise
differently, so treat the number as +-30 %, and measure on the chip before relying on it.

The dataset is replaced by the embedded synthetic scenes at the recipe's crop size (no data
needed); the class count is the recipe dataset's, so the head is the real one.
"""
import argparse
import json

import jax
import ml_collections

from jaxseg import config_files, methods
from jaxseg.data import pipeline, sources


def _synthetic_like(dataset_cfg) -> ml_collections.ConfigDict:
  crop = tuple(dataset_cfg.augment.get('crop_size', ()) or dataset_cfg.get('image_size'))
  return ml_collections.ConfigDict(dict(name='synthetic', seed=0, num_train=4, num_val=1,
                                        image_size=crop, domain='source',
                                        augment=dataset_cfg.augment.to_dict()))


def estimate(config_spec: str, per_device_batch: int) -> dict:
  """-> sizes in MiB of the compiled single-device train step at `per_device_batch`."""
  config = config_files.load_config(config_spec)
  meta = None
  if config.dataset.name in sources.REAL:
    meta = sources.REAL[config.dataset.name].meta(config.dataset)
  fake = _synthetic_like(config.dataset)
  source = sources.make_source(fake, 'train')
  meta = dict(source.meta, **(meta or {}))
  with config.unlocked():
    config.dataset = fake
  method = methods.build_method(config, meta)
  batch = pipeline.TrainBatches(source, method.train_transform(), per_device_batch, 0)[0]
  batch_shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), batch)
  example = jax.tree.map(lambda x: jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype), batch)
  state = jax.eval_shape(method.init_state, jax.random.PRNGKey(0), example)
  compiled = jax.jit(method.train_step, donate_argnums=(0,)).lower(state, batch_shapes).compile()
  m = compiled.memory_analysis()
  mib = lambda b: round(b / 2**20, 1)
  state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
  return dict(config=config_spec, per_device_batch=per_device_batch,
              input_shapes={k: list(v.shape) for k, v in batch.items()},
              state_mib=mib(state_bytes), argument_mib=mib(m.argument_size_in_bytes),
              output_mib=mib(m.output_size_in_bytes), alias_mib=mib(m.alias_size_in_bytes),
              temp_mib=mib(m.temp_size_in_bytes),
              peak_mib=mib(m.argument_size_in_bytes + m.output_size_in_bytes
                           - m.alias_size_in_bytes + m.temp_size_in_bytes),
              backend=jax.default_backend())


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', required=True)
  parser.add_argument('--per_device_batch', type=int, default=1)
  args = parser.parse_args()
  print(json.dumps(estimate(args.config, args.per_device_batch)), flush=True)


if __name__ == '__main__':
  main()
