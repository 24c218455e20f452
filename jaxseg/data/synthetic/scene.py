"""Synthetic scenes: classes, the scene description (camera, primitives, lights) and its random
sampling from (seed, index). Frames and conventions: `jaxseg.data.synthetic`."""
from __future__ import annotations

import colorsys
import dataclasses

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

