"""`--mode=predict --config.predict.input=<folder or glob>`: predictions for the user's own images.

For every image the pattern names (a folder means every .png/.jpg/.jpeg/.bmp/.ppm in it, sorted),
writes to `<workdir>/predictions/<stem>.png` the predicted class map as a palette PNG (pixel
values are class ids, the dataset's palette embedded: Cityscapes, VOC, ADE20K, NYU-40, synthetic)
and `<stem>_overlay.png` (the image blended with the colours), through the method's
`predict_step` and so with the configured inference mode (and CRF when on). An image that is
missing or cannot be decoded is named and skipped; the others are still written, then the run
ends with an error listing the skipped files.
"""
import glob
import os

import jax
import numpy as np

from jaxseg import viz
from jaxseg.data.formats.common import DatasetLayoutError, read_rgb

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm')


class PredictInputError(ValueError):
  """`config.predict.input` names nothing readable (or some images could not be read)."""


def list_inputs(pattern: str) -> list:
  """Folder -> its images (sorted); otherwise a glob pattern (sorted). Raises when empty."""
  if os.path.isdir(pattern):
    paths = sorted(os.path.join(pattern, f) for f in os.listdir(pattern)
                   if f.lower().endswith(IMAGE_SUFFIXES))
  else:
    paths = sorted(glob.glob(pattern))
    if not paths and os.path.splitext(pattern)[1] and not glob.has_magic(pattern):
      paths = [pattern]  # one named file: let the reader say what is wrong with it
  if not paths:
    raise PredictInputError(f'config.predict.input={pattern!r}: no images there (a folder of '
                            f'{"/".join(IMAGE_SUFFIXES)} files or a glob pattern)')
  return paths


def predict_files(method, state, config, out_dir: str) -> list:
  """Writes palette PNGs + overlays for `config.predict.input`; -> the written paths."""
  if not getattr(method, 'predicts_label_maps', False):
    raise PredictInputError(f'config.predict.input is for segmentation methods; '
                            f'config.method={config.method!r} predicts from its dataset only')
  transform = method.image_transform()
  predict_fn = jax.jit(method.predict_step)
  palette = np.asarray(method.meta['palette'], np.uint8)
  written, skipped = [], []
  for path in list_inputs(config.predict.input):
    try:
      raw = read_rgb(path, 'an RGB image')
    except (DatasetLayoutError, OSError) as e:
      reason = getattr(e, 'reason', None) or str(e)
      skipped.append(f'{path}: {reason}')
      print(f'skipped {path}: {reason}', flush=True)
      continue
    example = transform({'image': raw})
    pred = jax.device_get(predict_fn(state, {'image': example['image'][None]}))
    label = np.asarray(pred['label'][0])
    stem = os.path.splitext(os.path.basename(path))[0]
    target = os.path.join(out_dir, f'{stem}.png')
    if jax.process_index() == 0:
      viz.save_palette_png(target, label, palette, method.ignore_label)
      viz.save_png(os.path.join(out_dir, f'{stem}_overlay.png'),
                   viz.overlay(raw, viz.colorize_labels(label, palette, method.ignore_label)))
    written.append(target)
  print(f'wrote {len(written)} prediction(s) to {out_dir}', flush=True)
  if skipped:
    raise PredictInputError(f'{len(skipped)} of {len(skipped) + len(written)} images could not '
                            'be read (the others were written):\n  ' + '\n  '.join(skipped))
  return written
