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

import colorsys
import dataclasses
from typing import Any

import numpy as np

CLASS_NAMES = ('floor', 'wall', 'ceiling', 'box', 'sphere', 'cylinder', 'cone')
FLOOR, WALL, CEILING, BOX, SPHERE, CYLINDER, CONE = range(len(CLASS_NAMES))
NUM_CLASSES = len(CLASS_NAMES)
PALETTE = np.array(
    [
        [128, 64, 128],  # floor
        [70, 70, 70],  # wall
        [70, 130, 180],  # ceiling
        [220, 20, 60],  # box
        [250, 170, 30],  # sphere
        [0, 142, 0],  # cylinder
        [106, 50, 240],  # cone
    ],
    dtype=np.uint8,
)
PALETTE.setflags(write=False)
IGNORE_LABEL = 255
DEPTH_RANGE = (0.1, 10.0)
VFOV_DEG = 60.0
DOMAINS = ('source', 'target')

_SHAPES = ('box', 'sphere', 'cylinder', 'cone')
_SHAPE_LABEL = {'box': BOX, 'sphere': SPHERE, 'cylinder': CYLINDER, 'cone': CONE}
_EPS = 1e-6


# ----------------------------------------------------------------------------- scene description


@dataclasses.dataclass(frozen=True)
class Camera:
  """Pinhole camera pose: ``rotation`` (3, 3) camera->world, ``position`` (3,) world, metres."""

  rotation: np.ndarray
  position: np.ndarray
  vfov_deg: float = VFOV_DEG


@dataclasses.dataclass(frozen=True)
class Primitive:
  """An object resting on the floor.

  ``shape`` in ``_SHAPES``; ``center`` (2,) world XY of its footprint centre; ``size`` (3,):
  box half-extents (x, y, z), sphere (r, r, r), cylinder / cone (r, r, height); ``yaw`` radians
  (boxes only); ``color`` (3,) linear RGB albedo in [0, 1].
  """

  shape: str
  center: np.ndarray
  size: np.ndarray
  yaw: float
  color: np.ndarray

  @property
  def label(self) -> int:
    return _SHAPE_LABEL[self.shape]

  @property
  def height(self) -> float:
    return float(2 * self.size[2]) if self.shape in ('box', 'sphere') else float(self.size[2])

  @property
  def radius(self) -> float:
    """Footprint bounding radius (metres)."""
    if self.shape == 'box':
      return float(np.hypot(self.size[0], self.size[1]))
    return float(self.size[0])


@dataclasses.dataclass(frozen=True)
class Light:
  """``kind`` 'point' (``vector`` = world position) or 'directional' (``vector`` = unit direction
  towards the light); ``color`` (3,) linear RGB intensity."""

  kind: str
  vector: np.ndarray
  color: np.ndarray


@dataclasses.dataclass(frozen=True)
class Scene:
  """Everything about a scene that is shared by both domains.

  ``room`` (3,) = (width, depth, height) metres; ``window`` None or (x0, x1, z0, z1) on the back
  wall; ``colors`` dict 'floor' / 'wall' / 'ceiling' -> (3,) linear albedo.
  """

  room: np.ndarray
  window: tuple[float, float, float, float] | None
  camera: Camera
  objects: tuple[Primitive, ...]
  lights: tuple[Light, ...]
  ambient: float
  colors: dict[str, np.ndarray]


def _seed_sequences(seed: int, index: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
  """(scene stream, appearance stream) for one example."""
  if int(seed) < 0 or int(index) < 0:
    raise ValueError(f'seed and index must be non-negative, got seed={seed}, index={index}')
  scene_ss, appearance_ss = np.random.SeedSequence([int(seed), int(index)]).spawn(2)
  return scene_ss, appearance_ss


def _hsv_color(rng: np.random.Generator, sat: tuple[float, float],
               val: tuple[float, float]) -> np.ndarray:
  """A random colour (3,) float64 in [0, 1] with saturation / value in the given ranges."""
  h, s, v = rng.uniform(), rng.uniform(*sat), rng.uniform(*val)
  return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float64)


def _camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
  """Camera->world rotation (3, 3) for yaw (about Z, positive turns right), pitch (positive looks
  up) and roll (about the optical axis), radians."""
  fwd = np.array([np.sin(yaw) * np.cos(pitch), np.cos(yaw) * np.cos(pitch), np.sin(pitch)])
  right = np.array([np.cos(yaw), -np.sin(yaw), 0.0])
  up = np.cross(right, fwd)
  right, up = np.cos(roll) * right + np.sin(roll) * up, -np.sin(roll) * right + np.cos(roll) * up
  return np.stack([right, -up, fwd], axis=1)


def _sample_objects(
    rng: np.random.Generator, room: np.ndarray, cam_xy: np.ndarray, yaw: float
) -> tuple[Primitive, ...]:
  """2-6 non-overlapping objects on the floor, placed inside the camera's horizontal view wedge."""
  width, depth, height = room
  count = int(rng.integers(2, 7))
  placed: list[Primitive] = []
  half_fov = np.deg2rad(VFOV_DEG) / 2 * 0.85
  for _ in range(count):
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    if shape == 'box':
      size = np.array([rng.uniform(0.25, 0.65), rng.uniform(0.25, 0.65), rng.uniform(0.2, 0.8)])
      obj_yaw = float(rng.uniform(0, np.pi / 2)) if rng.uniform() < 0.6 else 0.0
    elif shape == 'sphere':
      size = np.full(3, rng.uniform(0.25, 0.6))
      obj_yaw = 0.0
    elif shape == 'cylinder':
      size = np.array([*[rng.uniform(0.2, 0.5)] * 2, rng.uniform(0.5, 1.6)])
      obj_yaw = 0.0
    else:
      size = np.array([*[rng.uniform(0.25, 0.55)] * 2, rng.uniform(0.6, 1.6)])
      obj_yaw = 0.0
    color = _hsv_color(rng, sat=(0.55, 1.0), val=(0.55, 1.0))
    for _attempt in range(30):
      ang = yaw + rng.uniform(-half_fov, half_fov)
      dist = rng.uniform(1.5, 5.0)
      center = cam_xy + dist * np.array([np.sin(ang), np.cos(ang)])
      candidate = Primitive(shape, center, size, obj_yaw, color)
      r = candidate.radius
      inside = (abs(center[0]) + r < width / 2 - 0.05) and (r + 0.05 < center[1] < depth - r - 0.05)
      if inside and all(np.hypot(*(center - o.center)) > r + o.radius + 0.1 for o in placed):
        placed.append(candidate)
        break
  return tuple(placed)


def _sample_lights(rng: np.random.Generator, room: np.ndarray) -> tuple[Light, ...]:
  """1-2 lights: point lights under the ceiling or directional lights from above."""
  width, depth, height = room
  lights = []
  count = int(rng.integers(1, 3))
  for _ in range(count):
    tint = np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.12, 0.12, size=3)
    if rng.uniform() < 0.6:
      pos = np.array([
          rng.uniform(-0.4, 0.4) * width,
          rng.uniform(0.15, 0.85) * depth,
          height - rng.uniform(0.1, 0.5),
      ])
      lights.append(Light('point', pos, tint * rng.uniform(1.2, 1.8) / count))
    else:
      elev = rng.uniform(np.deg2rad(35), np.deg2rad(75))
      azim = rng.uniform(0, 2 * np.pi)
      vec = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
      lights.append(Light('directional', vec, tint * rng.uniform(0.8, 1.1) / count))
  return tuple(lights)


def sample_scene(seed: int, index: int) -> Scene:
  """The resolution- and domain-independent description of example ``index`` of ``seed``."""
  scene_ss, _ = _seed_sequences(seed, index)
  rng = np.random.default_rng(scene_ss)
  room = np.array([rng.uniform(4.0, 7.0), rng.uniform(5.5, 8.5), rng.uniform(2.5, 3.2)])
  width, depth, height = room
  window = None
  if rng.uniform() < 0.3:
    w, h = rng.uniform(0.8, 2.0), rng.uniform(0.7, 1.3)
    x0 = rng.uniform(-width / 2 + 0.3, width / 2 - 0.3 - w)
    z0 = rng.uniform(0.8, height - h - 0.2)
    window = (float(x0), float(x0 + w), float(z0), float(z0 + h))
  cam_pos = np.array([
      rng.uniform(-0.25, 0.25) * width,
      rng.uniform(0.3, 1.0),
      rng.uniform(1.1, 1.7),
  ])
  yaw = float(rng.uniform(np.deg2rad(-20), np.deg2rad(20)))
  pitch = float(rng.uniform(np.deg2rad(-25), np.deg2rad(3)))
  roll = float(rng.uniform(np.deg2rad(-3), np.deg2rad(3)))
  camera = Camera(_camera_rotation(yaw, pitch, roll), cam_pos)
  objects = _sample_objects(rng, room, cam_pos[:2], yaw)
  lights = _sample_lights(rng, room)
  ambient = float(rng.uniform(0.15, 0.35))
  colors = {
      'floor': _hsv_color(rng, sat=(0.15, 0.6), val=(0.35, 0.8)),
      'wall': _hsv_color(rng, sat=(0.05, 0.45), val=(0.6, 0.95)),
      'ceiling': _hsv_color(rng, sat=(0.0, 0.25), val=(0.7, 1.0)),
  }
  return Scene(room, window, camera, objects, lights, ambient, colors)


def camera_intrinsics(height: int, width: int, vfov_deg: float = VFOV_DEG) -> np.ndarray:
  """K (3, 3) float64 for an (height, width) render; pixel centres at (j + 0.5, i + 0.5)."""
  focal = (height / 2) / np.tan(np.deg2rad(vfov_deg) / 2)
  return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], dtype=np.float64)


# ----------------------------------------------------------------------------- ray casting
# Rays are components o = (ox, oy, oz), d = (dx, dy, dz): Python floats or float32 arrays that
# broadcast together. Intersectors return t (float32, the broadcast shape) with inf for a miss and
# keep hits with t > tmin. Camera rays are d = R @ (x, y, 1), so t is the depth along camera z.

_INF = np.float32(np.inf)


def _where_ok(ok: np.ndarray, t: np.ndarray) -> np.ndarray:
  return np.where(ok, t, _INF)


def _intersect_sphere(obj: Primitive, o, d, tmin: float) -> np.ndarray:
  r, cx, cy = float(obj.size[0]), float(obj.center[0]), float(obj.center[1])
  ox, oy, oz = o[0] - cx, o[1] - cy, o[2] - r
  dx, dy, dz = d
  a = dx * dx + dy * dy + dz * dz
  b = ox * dx + oy * dy + oz * dz
  c = ox * ox + oy * oy + oz * oz - r * r
  disc = b * b - a * c
  t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
  return _where_ok((disc >= 0) & (t > tmin), t)


def _intersect_cylinder(obj: Primitive, o, d, tmin: float) -> np.ndarray:
  r, h = float(obj.size[0]), float(obj.size[2])
  ox, oy, oz = o[0] - float(obj.center[0]), o[1] - float(obj.center[1]), o[2]
  dx, dy, dz = d
  a = dx * dx + dy * dy
  b = ox * dx + oy * dy
  c = ox * ox + oy * oy - r * r
  disc = b * b - a * c
  t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
  z_side = oz + t_side * dz
  t_side = _where_ok((disc >= 0) & (t_side > tmin) & (z_side >= 0) & (z_side <= h), t_side)
  t_cap = (h - oz) / dz
  x_cap, y_cap = ox + t_cap * dx, oy + t_cap * dy
  t_cap = _where_ok((t_cap > tmin) & (x_cap * x_cap + y_cap * y_cap <= r * r), t_cap)
  return np.minimum(t_side, t_cap)


def _intersect_cone(obj: Primitive, o, d, tmin: float) -> np.ndarray:
  r, h = float(obj.size[0]), float(obj.size[2])
  k2 = (r / h) ** 2
  ox, oy, w = o[0] - float(obj.center[0]), o[1] - float(obj.center[1]), h - o[2]  # w: below apex
  dx, dy, dz = d
  a = dx * dx + dy * dy - k2 * dz * dz
  b = ox * dx + oy * dy + k2 * w * dz
  c = ox * ox + oy * oy - k2 * w * w
  disc = b * b - a * c
  sq = np.sqrt(np.maximum(disc, 0.0))
  best = _INF
  for t in ((-b - sq) / a, (-b + sq) / a):
    z = o[2] + t * dz
    best = np.minimum(best, _where_ok((disc >= 0) & (t > tmin) & (z >= 0) & (z <= h), t))
  return best


def _box_local(obj: Primitive, o, d):
  """Ray components in the box frame (origin at the box centre, axes along its edges)."""
  cy, sy = float(np.cos(obj.yaw)), float(np.sin(obj.yaw))
  ox, oy, oz = o[0] - float(obj.center[0]), o[1] - float(obj.center[1]), o[2] - float(obj.size[2])
  lo = (cy * ox + sy * oy, -sy * ox + cy * oy, oz)
  ld = (cy * d[0] + sy * d[1], -sy * d[0] + cy * d[1], d[2])
  return lo, ld


def _intersect_box(obj: Primitive, o, d, tmin: float) -> np.ndarray:
  lo, ld = _box_local(obj, o, d)
  t_near, t_far = -_INF, _INF
  for axis in range(3):
    half = float(obj.size[axis])
    inv = 1.0 / ld[axis]
    t1 = (-half - lo[axis]) * inv
    t2 = (half - lo[axis]) * inv
    t_near = np.maximum(t_near, np.minimum(t1, t2))
    t_far = np.minimum(t_far, np.maximum(t1, t2))
  return _where_ok((t_near <= t_far) & (t_near > tmin), t_near)


_INTERSECT = {
    'box': _intersect_box,
    'sphere': _intersect_sphere,
    'cylinder': _intersect_cylinder,
    'cone': _intersect_cone,
}


def _object_normals(obj: Primitive, p, d) -> np.ndarray:
  """Unit world normals (3, N) at surface points p = (px, py, pz) hit by rays d = (dx, dy, dz)
  (each (N,)), outward and flipped if needed to face the ray (rim / edge pixels)."""
  x, y, z = p[0] - float(obj.center[0]), p[1] - float(obj.center[1]), p[2]
  if obj.shape == 'sphere':
    n = np.stack([x, y, z - float(obj.size[2])])
  elif obj.shape == 'cylinder':
    cap = (z > float(obj.size[2]) - 1e-3) & (d[2] < 0)
    n = np.stack([np.where(cap, 0, x), np.where(cap, 0, y), cap.astype(np.float32)])
  elif obj.shape == 'cone':  # gradient of x^2 + y^2 - k^2 (h - z)^2 on the surface
    n = np.stack([x, y, float(obj.size[0] / obj.size[2]) * np.sqrt(x * x + y * y)])
  else:
    (lx, ly, lz), _ = _box_local(obj, p, (0.0, 0.0, 0.0))
    ratios = np.stack([np.abs(c) / float(h) for c, h in zip((lx, ly, lz), obj.size)])
    face = np.argmax(ratios, axis=0)
    local = np.zeros((3, len(face)), np.float32)
    local[face, np.arange(len(face))] = np.sign(np.choose(face, [lx, ly, lz]))
    cy, sy = np.cos(obj.yaw), np.sin(obj.yaw)
    n = np.stack([cy * local[0] - sy * local[1], sy * local[0] + cy * local[1], local[2]])
  n = n.astype(np.float32)
  away = n[0] * d[0] + n[1] * d[1] + n[2] * d[2] > 0
  n *= np.where(away, np.float32(-1), np.float32(1)) / (np.sqrt(np.sum(n * n, axis=0)) + _EPS)
  return n


def _bounding_sphere(obj: Primitive) -> tuple[np.ndarray, float]:
  """World centre (3,) and radius of a sphere enclosing the object."""
  h = obj.height
  return np.array([obj.center[0], obj.center[1], h / 2]), float(np.hypot(obj.radius, h / 2))


def _screen_box(obj: Primitive, camera: Camera, k: np.ndarray, height: int, width: int):
  """Pixel slices (rows, cols) containing the object's projection (whole image if unsure)."""
  r, h = obj.radius, obj.height
  cx, cy = obj.center
  corners = np.array([[cx + sx * r, cy + sy * r, z]
                      for sx in (-1, 1) for sy in (-1, 1) for z in (0, h)])
  pc = (corners - camera.position) @ camera.rotation  # world -> camera: R^T (p - c)
  if np.any(pc[:, 2] < 0.05):
    return slice(0, height), slice(0, width)
  uv = pc[:, :2] / pc[:, 2:] * k[0, 0] + k[:2, 2]
  j0, i0 = np.floor(uv.min(axis=0)).astype(int) - 1
  j1, i1 = np.ceil(uv.max(axis=0)).astype(int) + 1
  return slice(max(i0, 0), max(min(i1, height), 0)), slice(max(j0, 0), max(min(j1, width), 0))


def _camera_rays(camera: Camera, k: np.ndarray, height: int, width: int) -> np.ndarray:
  """World ray directions (3, H, W) float32 whose camera-z component is 1."""
  x = ((np.arange(width) + 0.5 - k[0, 2]) / k[0, 0]).astype(np.float32)
  y = ((np.arange(height) + 0.5 - k[1, 2]) / k[1, 1]).astype(np.float32)
  r = camera.rotation.astype(np.float32)
  r = r[:, :, None, None]
  return r[:, 0] * x[None, None, :] + r[:, 1] * y[None, :, None] + r[:, 2]


def _intersect_room(scene: Scene, o: tuple[float, ...], d: np.ndarray):
  """Exit of the (convex) room: t (H, W), surface id (H, W) int16 (-1 window, 0 floor,
  1 ceiling, 2 walls) and world normals (3, H, W) pointing into the room."""
  width, depth, height = (float(v) for v in scene.room)
  bounds = ((-width / 2, width / 2), (0.0, depth), (0.0, height))
  positive = d > 0
  with np.errstate(divide='ignore', invalid='ignore'):
    tx, ty, tz = (np.where(positive[a], np.float32(hi - o[a]), np.float32(lo - o[a])) / d[a]
                  for a, (lo, hi) in enumerate(bounds))
  t = np.minimum(np.minimum(tx, ty), tz)
  on_z = tz <= t
  on_y = (ty <= t) & ~on_z
  on_x = ~on_z & ~on_y
  sid = np.where(on_z, positive[2], 2).astype(np.int16)
  normals = np.empty_like(d)
  for a, on in enumerate((on_x, on_y, on_z)):
    normals[a] = np.where(on, np.where(positive[a], np.float32(-1), np.float32(1)), np.float32(0))
  if scene.window is not None:
    x0, x1, z0, z1 = scene.window
    px, pz = o[0] + t * d[0], o[2] + t * d[2]
    hole = on_y & positive[1] & (px > x0) & (px < x1) & (pz > z0) & (pz < z1)
    t[hole] = _INF
    sid[hole] = -1
    for a in range(3):
      normals[a][hole] = 0.0
  return t, sid, normals


def _cast(scene: Scene, height: int, width: int):
  """Primary rays. Returns t (H, W) float32 (inf = miss), surface id (H, W) int16 (-1 miss,
  0 floor, 1 ceiling, 2 walls, 3 + k object k), world normals (3, H, W), hit points (3, H, W)
  and ray directions (3, H, W)."""
  cam = scene.camera
  k = camera_intrinsics(height, width, cam.vfov_deg)
  d = _camera_rays(cam, k, height, width)
  o = tuple(float(v) for v in cam.position)
  t, sid, normals = _intersect_room(scene, o, d)
  with np.errstate(divide='ignore', invalid='ignore'):
    for idx, obj in enumerate(scene.objects):
      rows, cols = _screen_box(obj, cam, k, height, width)
      sub_d = d[:, rows, cols]
      if sub_d[0].size == 0:
        continue
      t_obj = _INTERSECT[obj.shape](obj, o, sub_d, 1e-4)
      closer = t_obj < t[rows, cols]
      if not closer.any():
        continue
      t_hit = t_obj[closer]
      t[rows, cols][closer] = t_hit
      sid[rows, cols][closer] = 3 + idx
      d_hit = tuple(sub_d[a][closer] for a in range(3))
      n_obj = _object_normals(obj, tuple(o[a] + t_hit * d_hit[a] for a in range(3)), d_hit)
      for a in range(3):
        normals[a, rows, cols][closer] = n_obj[a]
  t_or_0 = np.where(sid >= 0, t, np.float32(0))
  p = np.stack([o[a] + t_or_0 * d[a] for a in range(3)])
  return t, sid, normals, p, d


def _take(a, idx: np.ndarray) -> tuple[np.ndarray, ...]:
  """Columns idx of a (C, N) as a tuple of C arrays (len(idx),); much faster than a[:, idx]."""
  return tuple(row[idx] for row in a)


def _shadow_candidates(scene: Scene, p: np.ndarray, light: Light, v=None,
                       dist=None) -> list[np.ndarray]:
  """Per object, a bool (N,) mask of points p (3, N) whose ray to the light may hit it
  (its bounding sphere). For point lights ``v = p - light`` (3, N) and ``dist = |v|`` (N,)."""
  out = []
  if light.kind == 'directional':
    lvec = light.vector
    e1 = np.cross(lvec, [0.0, 0.0, 1.0] if abs(lvec[2]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    basis = np.stack([e1, np.cross(lvec, e1), lvec])  # rows: across, across, along the light
    q = [sum(float(e[a]) * p[a] for a in range(3)) for e in basis]
  for obj in scene.objects:
    c, radius = _bounding_sphere(obj)
    if light.kind == 'point':
      w = c - light.vector
      dw = float(np.linalg.norm(w))
      if radius >= dw:
        out.append(np.ones(p.shape[1], bool))
        continue
      cos_max = float(np.sqrt(1 - (radius / dw) ** 2)) / dw
      dot = v[0] * float(w[0]) + v[1] * float(w[1]) + v[2] * float(w[2])
      out.append((dot > cos_max * dist) & (dist > dw - radius))
    else:
      qc = [float(x) for x in basis @ c]
      across = (q[0] - qc[0]) ** 2 + (q[1] - qc[1]) ** 2
      out.append((across < radius**2) & (q[2] < qc[2] + radius))
  return out


def _visibility(scene: Scene, p: np.ndarray, n: np.ndarray, light: Light, mask: np.ndarray,
                v=None, dist=None) -> np.ndarray:
  """(N,) float32: 0 where an object blocks ``light`` from points p (3, N) with normals n (3, N),
  else 1; only points in ``mask`` (N,) bool are tested."""
  lit = np.ones(p.shape[1], np.float32)
  candidates = _shadow_candidates(scene, p, light, v, dist)
  with np.errstate(divide='ignore', invalid='ignore'):
    for obj, cand in zip(scene.objects, candidates):
      idx = np.flatnonzero(cand & mask & (lit > 0))
      if idx.size == 0:
        continue
      if light.kind == 'point':
        # Cast from the light towards each point; blocked if the object is hit first.
        lp = tuple(float(x) for x in light.vector)
        seg = _take(v, idx)
        tmax = 1.0 - 0.01 / np.maximum(dist[idx], _EPS)
        blocked = _INTERSECT[obj.shape](obj, lp, seg, 1e-6) < tmax
      else:
        q = tuple(pa + 0.01 * na for pa, na in zip(_take(p, idx), _take(n, idx)))
        to_light = tuple(float(x) for x in light.vector)
        blocked = np.isfinite(_INTERSECT[obj.shape](obj, q, to_light, 1e-6))
      lit[idx[blocked]] = 0.0
  return lit


def _irradiance(scene: Scene, p: np.ndarray, n: np.ndarray) -> np.ndarray:
  """Lambertian irradiance (3, N) float32 at points p (3, N) with unit world normals n (3, N)."""
  e = np.full((3, p.shape[1]), scene.ambient, np.float32)
  for light in scene.lights:
    v = dist = None
    if light.kind == 'point':
      v = np.stack([p[a] - float(light.vector[a]) for a in range(3)])  # light -> point
      dist2 = v[0] * v[0] + v[1] * v[1] + v[2] * v[2]
      dist = np.sqrt(dist2)
      strength = -(n[0] * v[0] + n[1] * v[1] + n[2] * v[2]) / (dist * (1.0 + dist2 / 25.0))
    else:
      lx, ly, lz = (float(x) for x in light.vector)
      strength = n[0] * lx + n[1] * ly + n[2] * lz
    facing = strength > 0
    strength = np.where(facing, strength, np.float32(0))
    strength *= _visibility(scene, p, n, light, facing, v, dist)
    for a in range(3):
      e[a] += strength * float(light.color[a])
  return e


# ----------------------------------------------------------------------------- appearance


def _texture_params(rng: np.random.Generator) -> dict[str, Any]:
  """Random solid-texture parameters: kind, waves, frequency, second colour mix."""
  waves = rng.normal(size=(4, 3))
  freq = float(rng.uniform(2.0, 6.0))
  waves *= (freq * np.array([1.0, 1.0, 1.9, 3.7]) / np.linalg.norm(waves, axis=1))[:, None]
  return {
      'kind': int(rng.integers(4)),  # 0 stripes, 1 checker, 2 blotches, 3 marble
      'waves': (2 * np.pi * waves).astype(np.float32),  # (4, 3): row 0 the main direction
      'phases': rng.uniform(0, 2 * np.pi, size=(4, 1)).astype(np.float32),
      'freq': freq,
      'dim': float(rng.uniform(0.3, 0.7)),
      'tint': rng.uniform(0, 0.3, size=3).astype(np.float32),
      'contrast': float(rng.uniform(0.35, 0.75)),
  }


def _texture(tp: dict[str, Any], p: np.ndarray) -> np.ndarray:
  """Solid texture ``tp`` evaluated at world points p (3, N): values (N,) in [0, 1]."""
  kind = tp['kind']
  if kind == 1:
    return (np.floor(p * (tp['freq'] * 0.7)).sum(axis=0) % 2).astype(np.float32)
  if kind == 0:
    return (np.sin(tp['waves'][0] @ p + tp['phases'][0]) > 0).astype(np.float32)
  waves = np.sin(tp['waves'] @ p + tp['phases'])  # (4, N)
  if kind == 2:
    return 0.5 + (waves[1] + waves[2] + 0.5 * waves[3]) / 5
  return 0.5 + 0.5 * np.sin(0.5 * (tp['waves'][0] @ p) + 1.5 * (waves[1] + waves[2]))


def _surface_colors(scene: Scene) -> np.ndarray:
  """Base albedo (3, S) float32 per surface id: floor, ceiling, walls, then the objects."""
  colors = [scene.colors['floor'], scene.colors['ceiling'], scene.colors['wall']]
  return np.stack(colors + [o.color for o in scene.objects], axis=1).astype(np.float32)


def _albedo(scene: Scene, sid: np.ndarray, p: np.ndarray, domain: str, rng) -> np.ndarray:
  """Linear albedo (3, N) for surface ids sid (N,) (-1 = miss: colour 0) at points p (3, N)."""
  colors = _surface_colors(scene)
  sid = np.maximum(sid, 0)
  albedo = np.stack([row[sid] for row in colors])
  if domain == 'source':
    return albedo
  # All parameters are drawn up front so the stream does not depend on what is visible.
  params = [_texture_params(rng) for _ in range(colors.shape[1])]
  for s, tp in enumerate(params):
    m = np.flatnonzero(sid == s)
    if m.size:
      tex = tp['contrast'] * _texture(tp, np.stack(_take(p, m)))
      for a in range(3):
        other = float(colors[a, s] * tp['dim'] + tp['tint'][a])
        albedo[a][m] += tex * (other - albedo[a][m])
  return albedo


def _sky(d: np.ndarray, domain: str) -> np.ndarray:
  """Linear RGB (3, N) seen through the window along world directions d (3, N)."""
  elev = d[2] / np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
  top, bottom = np.array([0.25, 0.5, 1.0]), np.array([0.8, 0.9, 1.0])
  if domain == 'target':
    top, bottom = np.array([0.9, 0.9, 0.85]), np.array([1.0, 1.0, 1.0])
  w = np.clip(elev * 2.0 + 0.3, 0, 1)
  return np.stack([bottom[a] + (top[a] - bottom[a]) * w for a in range(3)]).astype(np.float32)


def _blur3(img: np.ndarray) -> np.ndarray:
  """[1, 2, 1] / 4 blur along the last two axes of img (C, H, W), edges replicated."""
  for axis in (1, 2):
    x = np.moveaxis(img, axis, 0)
    out = 0.5 * x
    out[1:] += 0.25 * x[:-1]
    out[:-1] += 0.25 * x[1:]
    out[0] += 0.25 * x[0]
    out[-1] += 0.25 * x[-1]
    img = np.moveaxis(out, 0, axis)
  return img


def _to_uint8(img: np.ndarray, gamma: float) -> np.ndarray:
  """Quantise linear img (3, H, W) to uint8 (H, W, 3) as x ** (1 / gamma) (4096-entry table)."""
  lut = np.round(np.linspace(0, 1, 4096) ** (1 / gamma) * 255).astype(np.uint8)
  idx = (np.clip(img, 0, 1) * 4095 + 0.5).astype(np.int32)
  return np.take(lut, idx.transpose(1, 2, 0))


def _finish_target(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Target camera on linear RGB (3, H, W): colour cast, desaturation, blur, noise, gamma."""
  cast = np.array([1.08, 0.97, 0.8]) * (1 + rng.uniform(-0.05, 0.05, size=3))
  cast *= rng.uniform(0.9, 1.2)
  img = linear * cast.astype(np.float32)[:, None, None]
  gray = (img[0] + img[1] + img[2]) / 3
  img = gray + np.float32(rng.uniform(0.45, 0.7)) * (img - gray)
  img = _blur3(img)
  img += rng.standard_normal(img.shape[1:], dtype=np.float32) * np.float32(rng.uniform(0.01, 0.03))
  return _to_uint8(img, gamma=rng.uniform(1.5, 1.9))


def _contours(label: np.ndarray) -> np.ndarray:
  """uint8 (H, W): 1 where any 4-neighbour of ``label`` (H, W) differs."""
  out = np.zeros(label.shape, dtype=bool)
  dv = label[1:] != label[:-1]
  dh = label[:, 1:] != label[:, :-1]
  out[1:] |= dv
  out[:-1] |= dv
  out[:, 1:] |= dh
  out[:, :-1] |= dh
  return out.astype(np.uint8)


# ----------------------------------------------------------------------------- public API


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
