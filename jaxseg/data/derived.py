"""Targets derived from ground truth where a dataset ships none (PAD-Net's intermediate tasks).

The PAD-Net paper infers normals and contours from the ground truth without giving the
algorithm; this is jaxseg's documented choice, used for NYUv2 and Cityscapes alike:
- normals: back-project every pixel with the camera intrinsics (1-based pixel coordinates as in
  the NYU toolbox): P(u, v) = Z * ((u - cx) / fx, (v - cy) / fy, 1). The tangents are the central
  differences dP/du and dP/dv (one-sided at the image border, numpy.gradient) and
  n = normalise(dP/dv x dP/du), flipped where needed so that n . P <= 0 (it faces the camera;
  camera frame x right, y down, z forward). Normals are (0, 0, 0) wherever the pixel or a
  neighbour used by the differences has no valid depth: a zero normal means "undefined", and
  the PAD-Net loss and metrics skip it.
- contours: 1 where any 4-neighbour has a different label, void included; 0 elsewhere. Both
  sides of a boundary are marked.
"""
from __future__ import annotations

import numpy as np


def normals_from_depth(depth: np.ndarray, intrinsics: dict) -> tuple[np.ndarray, np.ndarray]:
  """Surface normals from (H, W) metric depth (0 = invalid); see the module docstring.

  `intrinsics`: {fx, fy, cx, cy} in 1-based pixel coordinates (the NYU toolbox convention; a
  0-based principal point u0 is cx = u0 + 1).

  Returns (normals (H, W, 3) float32 unit vectors in the camera frame, zero where undefined;
  valid (H, W) bool).
  """
  k = intrinsics
  z = np.asarray(depth, np.float64)
  h, w = z.shape
  ok = np.isfinite(z) & (z > 0)
  z = np.where(ok, z, 0.0)
  u = np.arange(1, w + 1, dtype=np.float64)[None, :]
  v = np.arange(1, h + 1, dtype=np.float64)[:, None]
  pts = np.stack([(u - k['cx']) / k['fx'] * z, (v - k['cy']) / k['fy'] * z, z], axis=-1)
  t_v, t_u = np.gradient(pts, axis=(0, 1)) if min(h, w) > 1 else (None, None)
  if t_v is None:
    return np.zeros((h, w, 3), np.float32), np.zeros((h, w), bool)
  n = np.cross(t_v, t_u)
  norm = np.linalg.norm(n, axis=-1)
  p = np.pad(ok, 1, mode='edge')
  valid = ok & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:] & (norm > 1e-12)
  n = n / np.where(valid, norm, 1.0)[..., None]
  n = np.where((np.sum(n * pts, axis=-1) > 0)[..., None], -n, n)
  n = np.where(valid[..., None], n, 0.0)
  return n.astype(np.float32), valid


def contours_from_labels(label: np.ndarray) -> np.ndarray:
  """(H, W) uint8 map: 1 where a 4-neighbour has a different label (both sides marked)."""
  label = np.asarray(label)
  out = np.zeros(label.shape, bool)
  dv = label[1:, :] != label[:-1, :]
  dh = label[:, 1:] != label[:, :-1]
  out[1:, :] |= dv
  out[:-1, :] |= dv
  out[:, 1:] |= dh
  out[:, :-1] |= dh
  return out.astype(np.uint8)
