"""Checks of one decoded example against the conventions of docs/design.md.

`check_example(example, where, num_classes)` raises `DatasetLayoutError` naming `where` (the
file or prepared shard) and what was expected: image (H, W, 3) uint8; label (H, W) integer with
ids in [0, num_classes) or 255; depth (H, W) finite and >= 0 (0 = invalid); every map the size
of the image. Readers call it on what they produce, so a corrupt file stops preparation with
its name instead of a wrong array reaching a loss.
"""
import numpy as np

from jaxseg.data.formats.common import IGNORE, DatasetLayoutError

_MAPS = ('label', 'depth', 'valid', 'contours')


def check_example(example: dict, where: str, num_classes: int | None = None,
                  expected: str = '') -> dict:
  """Returns `example` unchanged; raises DatasetLayoutError for the first violation."""
  def bad(reason):
    raise DatasetLayoutError(where, expected or '(see docs/design.md: arrays)', reason)

  image = example.get('image')
  if image is not None:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
      bad(f'image is {image.dtype} {image.shape}, expected (H, W, 3) uint8 RGB, for')
  size = None if image is None else image.shape[:2]
  for key in _MAPS:
    if key not in example:
      continue
    arr = np.asarray(example[key])
    if arr.ndim != 2:
      bad(f'{key} has shape {arr.shape}, expected (H, W), for')
    if size is not None and arr.shape != size:
      bad(f'{key} size {arr.shape[1]}x{arr.shape[0]} differs from the image '
          f'{size[1]}x{size[0]} for')
  if 'label' in example:
    label = np.asarray(example['label'])
    if not np.issubdtype(label.dtype, np.integer):
      bad(f'label dtype is {label.dtype}, expected integer class ids, for')
    if num_classes is not None and label.size:
      out = (label >= num_classes) & (label != IGNORE) | (label < 0)
      if out.any():
        ids = np.unique(label[out])
        bad(f'label ids {ids[:8].tolist()} are out of range: expected 0..{num_classes - 1} '
            f'or {IGNORE} (ignore) for')
  if 'depth' in example:
    depth = np.asarray(example['depth'])
    if not np.issubdtype(depth.dtype, np.floating):
      bad(f'depth dtype is {depth.dtype}, expected float metres, for')
    finite = np.isfinite(depth)
    if not finite.all():
      bad(f'depth has {int((~finite).sum())} NaN/Inf values, expected finite metres '
          f'(0 = invalid) for')
    if (depth < 0).any():
      bad(f'depth has {int((depth < 0).sum())} negative values (min {float(depth.min()):.4g}), '
          f'expected >= 0 metres (0 = invalid) for')
  return example
