"""Appearance of a synthetic scene: albedo (flat source colours, procedural target textures),
sky, the target domain's blur / colour cast / noise, and label contours."""
from __future__ import annotations

from typing import Any

import numpy as np

from jaxseg.data.synthetic.raycast import _take
from jaxseg.data.synthetic.scene import Scene

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

