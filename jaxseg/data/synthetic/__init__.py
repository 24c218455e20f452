"""Procedural indoor scenes ray-cast in vectorised NumPy: the default dataset of every config.

A pinhole camera stands inside a box-shaped room (floor, ceiling, four walls; sometimes a window in
the back wall through which nothing is hit) holding 2-6 objects resting on the floor: boxes
(axis-aligned or yaw-rotated), spheres, vertical cylinders and vertical cones. 1-2 point or
directional lights plus ambient light give Lambertian shading with cast shadows from the objects.

Frames and conventions
- World frame: X right, Y forward (into the room), Z up. Floor ``Z = 0``, ceiling
  ``Z = room_height``, front wall ``Y = 0`` (behind the camera), back wall ``Y = room_depth``,
  side walls ``X = -+room_width / 2``. ``Scene.room`` = (width, depth, height).
- Camera frame: x right, y down, z forward (OpenCV). ``Camera.rotation`` (3, 3) maps camera-frame
  vectors to world (columns = camera axes in world coordinates); ``Camera.position`` (3,) in world.
- Intrinsics (:func:`camera_intrinsics`): square pixels, fixed vertical field of view ``VFOV_DEG``,
  principal point at the image centre; pixel (row i, col j) has its centre at
  ``(u, v) = (j + 0.5, i + 0.5)``. The field of view is fixed in angle and the scene never depends
  on the resolution: a render k times larger (k odd) has pixel (k i + k // 2, k j + k // 2) on
  exactly the ray of pixel (i, j).

Example (:func:`render_scene`), all (H, W) maps aligned with ``image``:
- ``image`` uint8 (H, W, 3) RGB.
- ``depth`` float32 (H, W): metric depth along the optical axis (camera z), metres; 0 where invalid.
- ``label`` uint8 (H, W): index into ``CLASS_NAMES``; ``IGNORE_LABEL`` (255) where no surface is hit
  (the window). Object colours are drawn from one distribution whatever the shape, so the object
  classes differ by shape only.
- ``normals`` float32 (H, W, 3): unit surface normals in the camera frame (x right, y down,
  z forward), oriented towards the camera (``n . ray < 0``), so the floor's normal is roughly
  ``(0, -1, 0)``; zeros where invalid.
- ``contours`` uint8 (H, W): 1 where any 4-neighbour has a different label value (255 counts as a
  value), else 0. Both sides of a boundary are marked, so edges are 2 pixels wide.
- ``valid`` bool (H, W): a surface was hit and its depth lies within ``DEPTH_RANGE`` (rooms are
  sized so that every hit is within range; in practice invalid = window).

Domains: the same (seed, index) gives the same geometry, lights, labels, depth and normals in both.
- ``'source'``: flat-coloured (untextured) saturated surfaces, clean Lambertian shading, no noise.
- ``'target'``: solid (3-D, resolution-independent) procedural textures (stripes, checker,
  sinusoidal blotches, marble) on every surface, a warm colour cast, lower saturation, a different
  gamma, a 3x3 blur and Gaussian luminance noise.

Randomness: ``np.random.SeedSequence([seed, index]).spawn(2)`` gives the scene stream (geometry,
lights, base colours) and the appearance stream (target textures and noise).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxseg.data.synthetic.appearance import (_albedo, _contours, _finish_target, _sky,
                                              _to_uint8)
from jaxseg.data.synthetic.raycast import _cast, _irradiance, _take
# The public names of the package (tests and callers use jaxseg.data.synthetic.<name>).
from jaxseg.data.synthetic.scene import (BOX, CEILING, CLASS_NAMES, CONE, CYLINDER, DEPTH_RANGE,
                                         DOMAINS, FLOOR, IGNORE_LABEL, NUM_CLASSES, PALETTE,
                                         SPHERE, VFOV_DEG, WALL, Camera, Light, Primitive, Scene,
                                         _seed_sequences, camera_intrinsics, sample_scene)


def _check_args(height: int, width: int, domain: str) -> None:
  if domain not in DOMAINS:
    raise ValueError(f'unknown domain {domain!r}; expected one of {DOMAINS}')
  if int(height) <= 0 or int(width) <= 0:
    raise ValueError(f'height and width must be positive, got ({height}, {width})')


def render(scene: Scene, height: int, width: int, domain: str = 'source',
           appearance_rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
  """Render ``scene`` at (height, width); see the module docstring for the returned dict.

  ``appearance_rng`` drives target textures and noise (``default_rng(0)`` when None).
  """
  _check_args(height, width, domain)
  height, width = int(height), int(width)
  rng = appearance_rng if appearance_rng is not None else np.random.default_rng(0)
  t, sid, n_world, p, d = _cast(scene, height, width)
  hit = sid >= 0
  label_of_sid = [IGNORE_LABEL, FLOOR, CEILING, WALL] + [o.label for o in scene.objects]
  label_of_sid = np.array(label_of_sid, np.uint8)
  label = label_of_sid[sid + 1]
  valid = hit & (t >= DEPTH_RANGE[0]) & (t <= DEPTH_RANGE[1])
  depth = np.where(valid, t, np.float32(0))
  normals = n_world.reshape(3, -1).T @ scene.camera.rotation.astype(np.float32)  # (N, 3): R^T n
  normals[~valid.ravel()] = 0.0
  normals = normals.reshape(height, width, 3)

  flat = (lambda a: a.reshape(3, -1))
  linear = _albedo(scene, sid.ravel(), flat(p), domain, rng)
  linear *= _irradiance(scene, flat(p), flat(n_world))
  miss = np.flatnonzero(~hit)
  if miss.size:
    sky = _sky(_take(flat(d), miss), domain)
    for a in range(3):
      linear[a][miss] = sky[a]
  linear = linear.reshape(3, height, width)
  image = _to_uint8(linear, 2.2) if domain == 'source' else _finish_target(linear, rng)
  return {
      'image': image,
      'depth': depth,
      'label': label,
      'normals': normals,
      'contours': _contours(label),
      'valid': valid,
  }


def render_scene(seed: int, index: int, height: int, width: int,
                 domain: str = 'source') -> dict[str, np.ndarray]:
  """Example ``index`` of ``seed`` rendered at (height, width) in ``domain``; deterministic.

  Returns ``image`` uint8 (H, W, 3), ``depth`` float32 (H, W), ``label`` uint8 (H, W),
  ``normals`` float32 (H, W, 3), ``contours`` uint8 (H, W), ``valid`` bool (H, W).
  """
  _check_args(height, width, domain)
  _, appearance_ss = _seed_sequences(seed, index)
  rng = np.random.default_rng(appearance_ss)
  return render(sample_scene(seed, index), height, width, domain, rng)


class SyntheticScenes:
  """Random-access dataset of ``num_examples`` scenes (wrap with ``grain.MapDataset.source``).

  Example ``i`` is ``render_scene(seed, i, height, width, domain)``.
  """

  def __init__(self, seed: int = 0, num_examples: int = 1000, height: int = 129, width: int = 129,
               domain: str = 'source'):
    _check_args(height, width, domain)
    if int(seed) < 0:
      raise ValueError(f'seed must be non-negative, got {seed}')
    if int(num_examples) <= 0:
      raise ValueError(f'num_examples must be positive, got {num_examples}')
    self.seed, self.num_examples = int(seed), int(num_examples)
    self.height, self.width, self.domain = int(height), int(width), domain

  @property
  def meta(self) -> dict[str, Any]:
    return {
        'name': f'synthetic_scenes_{self.domain}',
        'class_names': CLASS_NAMES,
        'palette': PALETTE.copy(),
        'num_classes': NUM_CLASSES,
        'ignore_label': IGNORE_LABEL,
        'depth_range': DEPTH_RANGE,
    }

  def __len__(self) -> int:
    return self.num_examples

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    i = int(i)
    if i < 0:
      i += self.num_examples
    if not 0 <= i < self.num_examples:
      raise IndexError(f'index {i} out of range for {self.num_examples} examples')
    return render_scene(self.seed, i, self.height, self.width, self.domain)

  def __repr__(self) -> str:
    return (f'SyntheticScenes(seed={self.seed}, num_examples={self.num_examples}, '
            f'height={self.height}, width={self.width}, domain={self.domain!r})')
