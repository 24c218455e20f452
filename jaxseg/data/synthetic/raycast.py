"""Ray casting of a synthetic scene: camera rays, primitive and room intersections, normals,
shadows and Lambertian irradiance (vectorised NumPy)."""
from __future__ import annotations

import numpy as np

from jaxseg.data.synthetic.scene import _EPS, Camera, Light, Primitive, Scene, camera_intrinsics

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

