"""Procedural indoor scenes ray-cast in vectorised NumPy: the default dataset of every config.

A pinhole camera stands inside a box-shaped room (floor, ceiling, four walls; sometimes a window in
the back wall through which nothing is hit) holding 2-6 objects resting on the floor: boxes
(axis-aligned or yaw-rotated), spheres, vertical cylinders and vertical cones. 1-2 point or
directional lights plus ambient light give Lambertian shading with cast shadows from the objects.

Frames and conventions
- World frame: X right, Y forward (into the room), Z up. Floor ``Z = 0``, ceiling ``Z = room_height``,
  front wall ``Y = 0`` (behind the camera), back wall ``Y = room_depth``, side walls
  ``X = -+room_width / 2``.
- Camera frame: x right, y down, z forward (OpenCV). ``Camera.rotation`` (3, 3) maps camera-frame
  vectors to world (columns = camera axes in world coordinates); ``Camera.position`` (3,) in world.
- Intrinsics (:func:`camera_intrinsics`): square pixels, fixed vertical field of view ``VFOV_DEG``,
  principal point at the image centre; pixel (row i, col j) has its centre at
  ``(u, v) = (j + 0.5, i + 0.5)``. The field of view is fixed in angle, so a render at twice the
  resolution shows the same scene with twice the pixels (geometry never depends on resolution).

Example (:func:`render_scene`), all (H, W) maps aligned with ``image``:
- ``image`` uint8 (H, W, 3) RGB.
- ``depth`` float32 (H, W): metric depth along the optical axis (camera z), metres; 0 where invalid.
- ``label`` uint8 (H, W): index into ``CLASS_NAMES``; ``IGNORE_LABEL`` (255) where no surface is hit
  (the window).
- ``normals`` float32 (H, W, 3): unit surface normals in the camera frame (x right, y down,
  z forward), oriented towards the camera (``n . ray < 0``), so the floor's normal is roughly
  ``(0, -1, 0)``; zeros where invalid.
- ``contours`` uint8 (H, W): 1 where any 4-neighbour has a different label value (255 counts as a
  value), else 0. Both sides of a boundary are marked, so edges are 2 pixels wide.
- ``valid`` bool (H, W): a surface was hit and its depth lies within ``DEPTH_RANGE``.

Domains: the same (seed, index) gives the same geometry, lights, labels, depth and normals in both.
- ``'source'``: flat-coloured (untextured) saturated surfaces, clean Lambertian shading, no noise.
- ``'target'``: solid procedural textures (stripes, checker, value noise, marble) on every surface,
  a warm colour cast, lower saturation, gamma change, a 3x3 blur and Gaussian sensor noise.

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


def _hsv_color(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> np.ndarray:
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
            size = np.array([rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6), rng.uniform(0.15, 0.75)])
            obj_yaw = float(rng.uniform(0, np.pi / 2)) if rng.uniform() < 0.6 else 0.0
        elif shape == 'sphere':
            size = np.full(3, rng.uniform(0.2, 0.55))
            obj_yaw = 0.0
        elif shape == 'cylinder':
            size = np.array([*[rng.uniform(0.15, 0.45)] * 2, rng.uniform(0.4, 1.6)])
            obj_yaw = 0.0
        else:
            size = np.array([*[rng.uniform(0.2, 0.5)] * 2, rng.uniform(0.5, 1.5)])
            obj_yaw = 0.0
        color = _hsv_color(rng, sat=(0.55, 1.0), val=(0.55, 1.0))
        for _attempt in range(30):
            ang = yaw + rng.uniform(-half_fov, half_fov)
            dist = rng.uniform(1.6, 6.5)
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
    pitch = float(rng.uniform(np.deg2rad(-22), np.deg2rad(6)))
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
# Rays are given as components (ox, oy, oz, dx, dy, dz): scalars or arrays that broadcast together.
# Every intersector returns t (same shape as the broadcast) with np.inf for a miss, keeping hits
# with t > tmin. With camera rays d = R @ (x, y, 1), t is the depth along the optical axis.


def _where_ok(ok: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.where(ok, t, np.inf)


def _intersect_sphere(obj: Primitive, o, d, tmin: float) -> np.ndarray:
    r = obj.size[0]
    ox, oy, oz = o[0] - obj.center[0], o[1] - obj.center[1], o[2] - r
    dx, dy, dz = d
    a = dx * dx + dy * dy + dz * dz
    b = ox * dx + oy * dy + oz * dz
    c = ox * ox + oy * oy + oz * oz - r * r
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return _where_ok((disc >= 0) & (t > tmin), t)


def _intersect_cylinder(obj: Primitive, o, d, tmin: float) -> np.ndarray:
    r, h = obj.size[0], obj.size[2]
    ox, oy, oz = o[0] - obj.center[0], o[1] - obj.center[1], o[2]
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
    r, h = obj.size[0], obj.size[2]
    k2 = (r / h) ** 2
    ox, oy, w = o[0] - obj.center[0], o[1] - obj.center[1], h - o[2]  # w: height below the apex
    dx, dy, dz = d
    a = dx * dx + dy * dy - k2 * dz * dz
    b = ox * dx + oy * dy + k2 * w * dz
    c = ox * ox + oy * oy - k2 * w * w
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    best = np.inf
    for t in ((-b - sq) / a, (-b + sq) / a):
        z = o[2] + t * dz
        best = np.minimum(best, _where_ok((disc >= 0) & (t > tmin) & (z >= 0) & (z <= h), t))
    return best


def _box_local(obj: Primitive, o, d):
    """Ray components in the box frame (origin at the box centre, axes along its edges)."""
    cy, sy = np.cos(obj.yaw), np.sin(obj.yaw)
    ox, oy, oz = o[0] - obj.center[0], o[1] - obj.center[1], o[2] - obj.size[2]
    lo = (cy * ox + sy * oy, -sy * ox + cy * oy, oz)
    ld = (cy * d[0] + sy * d[1], -sy * d[0] + cy * d[1], d[2])
    return lo, ld


def _intersect_box(obj: Primitive, o, d, tmin: float) -> np.ndarray:
    lo, ld = _box_local(obj, o, d)
    t_near, t_far = -np.inf, np.inf
    for axis in range(3):
        half = obj.size[axis]
        t1 = (-half - lo[axis]) / ld[axis]
        t2 = (half - lo[axis]) / ld[axis]
        t_near = np.maximum(t_near, np.minimum(t1, t2))
        t_far = np.minimum(t_far, np.maximum(t1, t2))
    return _where_ok((t_near <= t_far) & (t_near > tmin), t_near)


_INTERSECT = {
    'box': _intersect_box,
    'sphere': _intersect_sphere,
    'cylinder': _intersect_cylinder,
    'cone': _intersect_cone,
}


def _object_normals(obj: Primitive, p: np.ndarray) -> np.ndarray:
    """Outward unit world normals (N, 3) at surface points p (N, 3) of ``obj``."""
    x, y, z = p[:, 0] - obj.center[0], p[:, 1] - obj.center[1], p[:, 2]
    if obj.shape == 'sphere':
        n = np.stack([x, y, z - obj.size[2]], axis=1)
    elif obj.shape == 'cylinder':
        cap = z > obj.size[2] - 1e-4
        n = np.stack([np.where(cap, 0.0, x), np.where(cap, 0.0, y), cap.astype(np.float64)], axis=1)
    elif obj.shape == 'cone':
        k2 = (obj.size[0] / obj.size[2]) ** 2
        radial = np.sqrt(x * x + y * y) + _EPS
        n = np.stack([x, y, np.sqrt(k2) * radial], axis=1)  # grad of x^2 + y^2 - k^2 (h - z)^2
    else:
        (lx, ly, lz), _ = _box_local(obj, (p[:, 0], p[:, 1], p[:, 2]), (0.0, 0.0, 0.0))
        ratios = np.stack([np.abs(lx) / obj.size[0], np.abs(ly) / obj.size[1], np.abs(lz) / obj.size[2]], 1)
        face = np.argmax(ratios, axis=1)
        sign = np.sign(np.choose(face, [lx, ly, lz]))
        local = np.zeros_like(p)
        local[np.arange(len(p)), face] = sign
        cy, sy = np.cos(obj.yaw), np.sin(obj.yaw)
        n = np.stack([cy * local[:, 0] - sy * local[:, 1], sy * local[:, 0] + cy * local[:, 1], local[:, 2]], 1)
    return n / (np.linalg.norm(n, axis=1, keepdims=True) + _EPS)


def _screen_box(obj: Primitive, camera: Camera, k: np.ndarray, height: int, width: int):
    """Pixel slice (rows, cols) containing the object's projection (whole image if unsure)."""
    r, h = obj.radius, obj.height
    cx, cy = obj.center
    corners = np.array([[cx + sx * r, cy + sy * r, z] for sx in (-1, 1) for sy in (-1, 1) for z in (0, h)])
    pc = (corners - camera.position) @ camera.rotation  # world -> camera: R^T (p - c)
    if np.any(pc[:, 2] < 0.05):
        return slice(0, height), slice(0, width)
    uv = pc[:, :2] / pc[:, 2:] * k[0, 0] + k[:2, 2]
    j0, i0 = np.floor(uv.min(axis=0)).astype(int) - 1
    j1, i1 = np.ceil(uv.max(axis=0)).astype(int) + 1
    return slice(max(i0, 0), max(min(i1, height), 0)), slice(max(j0, 0), max(min(j1, width), 0))


def _camera_rays(camera: Camera, height: int, width: int):
    """World ray directions (dx, dy, dz), each (H, W) float64, with unit camera-z component."""
    k = camera_intrinsics(height, width, camera.vfov_deg)
    x = (np.arange(width) + 0.5 - k[0, 2]) / k[0, 0]
    y = (np.arange(height) + 0.5 - k[1, 2]) / k[1, 1]
    r = camera.rotation
    return tuple(r[a, 0] * x[None, :] + r[a, 1] * y[:, None] + r[a, 2] for a in range(3)), k


def _intersect_room(scene: Scene, o: np.ndarray, d):
    """Exit point of the (convex) room: t (H, W), surface id (H, W) int8 and world normals."""
    width, depth, height = scene.room
    bounds = ((-width / 2, width / 2), (0.0, depth), (0.0, height))
    ts = []
    for axis in range(3):
        lo, hi = bounds[axis]
        with np.errstate(divide='ignore', invalid='ignore'):
            ts.append(np.where(d[axis] > 0, (hi - o[axis]) / d[axis], (lo - o[axis]) / d[axis]))
    ts = np.stack(ts)
    axis = np.argmin(ts, axis=0)
    t = np.take_along_axis(ts, axis[None], 0)[0]
    # surface ids: 0 floor, 1 ceiling, 2 walls
    up = d[2] > 0
    sid = np.where(axis == 2, np.where(up, 1, 0), 2).astype(np.int16)
    if scene.window is not None:
        x0, x1, z0, z1 = scene.window
        px, pz = o[0] + t * d[0], o[2] + t * d[2]
        hole = (axis == 1) & (d[1] > 0) & (px > x0) & (px < x1) & (pz > z0) & (pz < z1)
        t = np.where(hole, np.inf, t)
        sid = np.where(hole, -1, sid)
    return t, sid, axis


def _room_normals(axis: np.ndarray, d) -> np.ndarray:
    """Inward unit world normals (..., 3) of the room surface hit along ``axis``."""
    n = np.zeros(axis.shape + (3,))
    for a in range(3):
        n[..., a] = np.where(axis == a, -np.sign(d[a]), 0.0)
    return n


def _cast(scene: Scene, height: int, width: int):
    """Primary rays: depth t (H, W) (inf = miss), surface id (H, W) (-1 miss, 0 floor, 1 ceiling,
    2 walls, 3 + k object k), world normals (H, W, 3), world hit points (H, W, 3)."""
    cam = scene.camera
    d, k = _camera_rays(cam, height, width)
    o = cam.position
    t, sid, axis = _intersect_room(scene, o, d)
    normals = _room_normals(axis, d)
    with np.errstate(divide='ignore', invalid='ignore'):
        for idx, obj in enumerate(scene.objects):
            rows, cols = _screen_box(obj, cam, k, height, width)
            sub_d = tuple(c[rows, cols] for c in d)
            if sub_d[0].size == 0:
                continue
            t_obj = _INTERSECT[obj.shape](obj, o, sub_d, 1e-4)
            closer = t_obj < t[rows, cols]
            if not closer.any():
                continue
            t[rows, cols] = np.where(closer, t_obj, t[rows, cols])
            sid[rows, cols] = np.where(closer, 3 + idx, sid[rows, cols])
    p = o + np.where(np.isfinite(t), t, 0.0)[..., None] * np.stack(d, axis=-1)
    for idx, obj in enumerate(scene.objects):
        m = sid == 3 + idx
        if m.any():
            normals[m] = _object_normals(obj, p[m])
    return t, sid, normals, p, np.stack(d, axis=-1)


def _shadow(scene: Scene, p: np.ndarray, n: np.ndarray, light: Light) -> np.ndarray:
    """(N,) float: 1 where the light reaches surface points p (N, 3), 0 where an object blocks it."""
    lit = np.ones(len(p))
    if not scene.objects or len(p) == 0:
        return lit
    with np.errstate(divide='ignore', invalid='ignore'):
        if light.kind == 'point':
            # Cast from the light towards each point; blocked if hit before reaching it.
            seg = p - light.vector
            dist = np.linalg.norm(seg, axis=1)
            tmax = 1.0 - 0.01 / np.maximum(dist, _EPS)
            d = (seg[:, 0], seg[:, 1], seg[:, 2])
            for obj in scene.objects:
                lit = np.where(_INTERSECT[obj.shape](obj, light.vector, d, 1e-6) < tmax, 0.0, lit)
        else:
            q = p + 0.01 * n
            o = (q[:, 0], q[:, 1], q[:, 2])
            d = tuple(np.float64(v) for v in light.vector)
            for obj in scene.objects:
                lit = np.where(np.isfinite(_INTERSECT[obj.shape](obj, o, d, 1e-6)), 0.0, lit)
    return lit


def _irradiance(scene: Scene, p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Lambertian irradiance (N, 3) at points p (N, 3) with world normals n (N, 3)."""
    e = np.full((len(p), 3), scene.ambient)
    for light in scene.lights:
        if light.kind == 'point':
            to_light = light.vector - p
            dist = np.linalg.norm(to_light, axis=1, keepdims=True)
            cos = np.sum(n * to_light, axis=1) / dist[:, 0]
            falloff = 1.0 / (1.0 + (dist[:, 0] / 5.0) ** 2)
        else:
            cos = n @ light.vector
            falloff = np.ones(len(p))
        facing = cos > 0
        vis = np.zeros(len(p))
        vis[facing] = _shadow(scene, p[facing], n[facing], light)
        e += (np.maximum(cos, 0.0) * falloff * vis)[:, None] * light.color
    return e


# ----------------------------------------------------------------------------- appearance


def _value_noise(lattice: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Trilinear value noise in [0, 1]: lattice (L, L, L) random values, q (N, 3) lattice coords."""
    size = lattice.shape[0]
    base = np.floor(q)
    f = q - base
    f = f * f * (3 - 2 * f)
    i = base.astype(np.int64) % size
    j = (i + 1) % size
    out = 0.0
    for cx in (0, 1):
        ix, wx = (j[:, 0], f[:, 0]) if cx else (i[:, 0], 1 - f[:, 0])
        for cy in (0, 1):
            iy, wy = (j[:, 1], f[:, 1]) if cy else (i[:, 1], 1 - f[:, 1])
            for cz in (0, 1):
                iz, wz = (j[:, 2], f[:, 2]) if cz else (i[:, 2], 1 - f[:, 2])
                out = out + wx * wy * wz * lattice[ix, iy, iz]
    return out


def _texture_params(rng: np.random.Generator) -> dict[str, Any]:
    """Random solid-texture parameters: kind, direction, frequency, offset, second colour mix."""
    direction = rng.normal(size=3)
    return {
        'kind': int(rng.integers(4)),  # 0 stripes, 1 checker, 2 value noise, 3 marble
        'direction': direction / np.linalg.norm(direction),
        'freq': rng.uniform(2.0, 6.0),
        'phase': rng.uniform(0, 2 * np.pi),
        'offset': rng.uniform(0, 16, size=3),
        'dim': rng.uniform(0.3, 0.7),
        'tint': rng.uniform(0, 0.3, size=3),
        'contrast': rng.uniform(0.35, 0.75),
    }


def _texture(tp: dict[str, Any], lattice: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Solid texture ``tp`` evaluated at world points p (N, 3): values (N,) in [0, 1]."""
    kind, freq, proj = tp['kind'], tp['freq'], p @ tp['direction']
    if kind == 0:
        return (np.sin(2 * np.pi * freq * proj + tp['phase']) > 0).astype(np.float64)
    if kind == 1:
        return (np.floor(p * freq * 0.7).sum(axis=1) % 2).astype(np.float64)
    noise = _value_noise(lattice, p * freq + tp['offset'])
    if kind == 2:
        return 0.65 * noise + 0.35 * _value_noise(lattice, p * freq * 2.7 + 5.0)
    return 0.5 + 0.5 * np.sin(np.pi * freq * proj + 6.0 * noise)


def _albedo(scene: Scene, sid: np.ndarray, p: np.ndarray, domain: str, rng) -> np.ndarray:
    """Per-pixel linear albedo (N, 3) for surface ids sid (N,) at world points p (N, 3)."""
    colors = [scene.colors['floor'], scene.colors['ceiling'], scene.colors['wall']]
    colors += [o.color for o in scene.objects]
    colors = np.stack(colors)
    albedo = colors[np.maximum(sid, 0)]
    if domain == 'source':
        return albedo
    # All parameters are drawn up front so the stream does not depend on what is visible.
    lattice = rng.uniform(size=(16, 16, 16))
    params = [_texture_params(rng) for _ in range(len(colors))]
    for s, tp in enumerate(params):
        m = sid == s
        if m.any():
            tex = tp['contrast'] * _texture(tp, lattice, p[m])[:, None]
            other = colors[s] * tp['dim'] + tp['tint']
            albedo[m] = albedo[m] * (1 - tex) + other * tex
    return albedo


def _sky(d: np.ndarray, domain: str) -> np.ndarray:
    """Linear RGB (N, 3) seen through the window along world directions d (N, 3)."""
    elev = d[:, 2] / np.linalg.norm(d, axis=1)
    top, bottom = (np.array([0.25, 0.5, 1.0]), np.array([0.8, 0.9, 1.0]))
    if domain == 'target':
        top, bottom = np.array([0.9, 0.9, 0.85]), np.array([1.0, 1.0, 1.0])
    w = np.clip(elev * 2.0 + 0.3, 0, 1)[:, None]
    return bottom * (1 - w) + top * w


def _blur3(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur of img (H, W, C) with edge padding."""
    p = np.pad(img, ((1, 1), (0, 0), (0, 0)), mode='edge')
    img = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
    p = np.pad(img, ((0, 0), (1, 1), (0, 0)), mode='edge')
    return 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]


def _finish_target(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Target camera pipeline on linear RGB (H, W, 3): cast, gamma, desaturation, blur, noise."""
    cast = np.array([1.08, 0.97, 0.8]) * (1 + rng.uniform(-0.05, 0.05, size=3))
    img = np.clip(linear * cast * rng.uniform(0.9, 1.2), 0, 1) ** (1 / rng.uniform(1.5, 1.9))
    gray = img.mean(axis=-1, keepdims=True)
    img = gray + rng.uniform(0.45, 0.7) * (img - gray)
    img = _blur3(img)
    img = img + rng.normal(0, rng.uniform(0.02, 0.045), size=img.shape)
    return img


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

    ``appearance_rng`` drives target textures and noise (a fixed default when None).
    """
    _check_args(height, width, domain)
    height, width = int(height), int(width)
    rng = appearance_rng if appearance_rng is not None else np.random.default_rng(0)
    t, sid, n_world, p, d = _cast(scene, height, width)
    hit = sid >= 0
    label = np.full((height, width), IGNORE_LABEL, dtype=np.uint8)
    label[sid == 0] = FLOOR
    label[sid == 1] = CEILING
    label[sid == 2] = WALL
    for idx, obj in enumerate(scene.objects):
        label[sid == 3 + idx] = obj.label
    valid = hit & (t >= DEPTH_RANGE[0]) & (t <= DEPTH_RANGE[1])
    depth = np.where(valid, t, 0.0).astype(np.float32)
    n_cam = n_world @ scene.camera.rotation  # R^T n
    normals = np.where(valid[..., None], n_cam, 0.0).astype(np.float32)

    linear = np.zeros((height, width, 3))
    ph, nh, sh = p[hit], n_world[hit], sid[hit]
    linear[hit] = _albedo(scene, sh, ph, domain, rng) * _irradiance(scene, ph, nh)
    if not hit.all():
        linear[~hit] = _sky(d[~hit], domain)
    if domain == 'source':
        img = np.clip(linear, 0, 1) ** (1 / 2.2)
    else:
        img = _finish_target(linear, rng)
    image = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    return {
        'image': image,
        'depth': depth,
        'label': label,
        'normals': normals,
        'contours': _contours(label),
        'valid': valid,
    }


def render_scene(seed: int, index: int, height: int, width: int, domain: str = 'source') -> dict[str, np.ndarray]:
    """Example ``index`` of ``seed`` rendered at (height, width) in ``domain``; deterministic.

    Returns ``image`` uint8 (H, W, 3), ``depth`` float32 (H, W), ``label`` uint8 (H, W),
    ``normals`` float32 (H, W, 3), ``contours`` uint8 (H, W), ``valid`` bool (H, W).
    """
    _check_args(height, width, domain)
    _, appearance_ss = _seed_sequences(seed, index)
    return render(sample_scene(seed, index), height, width, domain, np.random.default_rng(appearance_ss))


class SyntheticScenes:
    """Random-access dataset of ``num_examples`` scenes (wrap with ``grain.MapDataset.source``)."""

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
