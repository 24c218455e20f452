"""Bicubic down-sampling of depth for depth super-resolution (x4 / x8 / x16).

Two reference conventions exist (ctkt_dsr.md §8; cv2 and PIL results differ a lot, dkn#1):
- method='pil' (NYU v2, DKN/FDSR protocol): PIL `Image.resize(..., BICUBIC)` on a float32 'F'
  image. Pillow's bicubic is a = -0.5 with the kernel widened by the scale factor when
  down-sampling (antialiased), normalised weights at the borders. The NYU protocol min-max
  normalises each depth map first (`minmax_normalize`) and crops 6 px at evaluation.
- method='cv2' (Middlebury / Sintel, PMBANet protocol): OpenCV `cv2.resize(..., INTER_CUBIC)`,
  re-implemented in NumPy so OpenCV is not a dependency: a = -0.75, no antialiasing, source
  coordinate (x + 0.5) * scale - 0.5, four taps with indices clamped to the image (replicate).
Both return float32. Inputs whose size is not a multiple of the scale raise; use `modcrop`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

SCALES = (2, 4, 8, 16)


def modcrop(x: np.ndarray, scale: int) -> np.ndarray:
  """Crops the bottom/right of an (H, W, ...) array to multiples of `scale`."""
  h, w = x.shape[:2]
  return x[:h - h % scale, :w - w % scale]


def minmax_normalize(depth: np.ndarray, valid: np.ndarray | None = None
                     ) -> tuple[np.ndarray, tuple[float, float]]:
  """(depth - min) / (max - min) as float32, and (min, max) to undo it.

  `valid` (H, W) bool: min and max are taken over the valid pixels only (Sintel / Middlebury /
  ToF maps store 0 where depth is missing; counting those zeros would put every map's minimum
  at 0 and squeeze the real range), and invalid pixels are set to 0 in the result. Without
  `valid`, non-finite pixels are the invalid ones. No valid pixel: zeros and (0, 1).
  """
  d = np.asarray(depth, np.float32)
  ok = np.isfinite(d) if valid is None else (np.asarray(valid, bool) & np.isfinite(d))
  if not ok.any():
    return np.zeros_like(d), (0.0, 1.0)
  lo, hi = float(d[ok].min()), float(d[ok].max())
  out = np.where(ok, (d - lo) / max(hi - lo, 1e-12), 0.0)
  return out.astype(np.float32), (lo, hi)


def _pil_resize(x: np.ndarray, size_hw) -> np.ndarray:
  im = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))
  return np.asarray(im.resize((size_hw[1], size_hw[0]), Image.BICUBIC), np.float32).copy()


def _cv2_cubic_matrix(n_in: int, n_out: int, a: float = -0.75) -> np.ndarray:
  """(n_out, n_in) interpolation matrix of OpenCV INTER_CUBIC along one axis."""
  fx = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
  sx = np.floor(fx).astype(np.int64)
  t = fx - sx

  def kernel(d):  # Keys cubic with parameter a, |d| <= 2
    d = np.abs(d)
    return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                    np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))

  m = np.zeros((n_out, n_in))
  rows = np.arange(n_out)
  weights = [kernel(t + 1), kernel(t), kernel(1 - t)]
  weights.append(1.0 - weights[0] - weights[1] - weights[2])
  for k, wk in zip(range(-1, 3), weights):
    np.add.at(m, (rows, np.clip(sx + k, 0, n_in - 1)), wk)
  return m


def _cv2_resize(x: np.ndarray, size_hw) -> np.ndarray:
  x = np.asarray(x, np.float64)
  my = _cv2_cubic_matrix(x.shape[0], size_hw[0])
  mx = _cv2_cubic_matrix(x.shape[1], size_hw[1])
  return (my @ x @ mx.T).astype(np.float32)


def resize(depth: np.ndarray, size_hw, method: str = 'pil') -> np.ndarray:
  """Bicubic resize of an (H, W) float map to `size_hw` with the 'pil' or 'cv2' convention."""
  if method == 'pil':
    return _pil_resize(depth, size_hw)
  if method == 'cv2':
    return _cv2_resize(depth, size_hw)
  raise ValueError(f"method must be 'pil' or 'cv2', got {method!r}")


def downsample(depth: np.ndarray, scale: int, method: str = 'pil') -> np.ndarray:
  """(H, W) depth -> (H / scale, W / scale) float32 by bicubic down-sampling."""
  depth = np.asarray(depth)
  if depth.ndim != 2:
    raise ValueError(f'expected an (H, W) depth map, got shape {depth.shape}')
  h, w = depth.shape
  if scale < 1 or h % scale or w % scale:
    raise ValueError(f'size {h}x{w} is not a multiple of scale {scale}; use modcrop first')
  return resize(depth, (h // scale, w // scale), method)


def upsample(lr: np.ndarray, scale: int, method: str = 'pil') -> np.ndarray:
  """Bicubic up-sampling by `scale` (the interpolated input some DSR networks take)."""
  h, w = np.asarray(lr).shape
  return resize(lr, (h * scale, w * scale), method)


def make_lr(depth: np.ndarray, scale: int, protocol: str = 'nyu') -> dict:
  """Low-resolution input for a depth-SR protocol.

  protocol 'nyu' (DKN/FDSR): min-max normalise, PIL bicubic down/up. 'middlebury' (PMBANet):
  cv2 INTER_CUBIC down/up on the values as given (e.g. the 0..255 disparity scale).
  Returns {'hr', 'lr', 'lr_up'} float32 and 'minmax' (min, max) for 'nyu'.
  """
  if protocol == 'nyu':
    hr, minmax = minmax_normalize(depth)
    method = 'pil'
  elif protocol == 'middlebury':
    hr, minmax, method = np.asarray(depth, np.float32), None, 'cv2'
  else:
    raise ValueError(f"protocol must be 'nyu' or 'middlebury', got {protocol!r}")
  lr = downsample(hr, scale, method)
  out = {'hr': hr, 'lr': lr, 'lr_up': upsample(lr, scale, method)}
  if minmax is not None:
    out['minmax'] = minmax
  return out


# ---------------------------------------------------------------------------------------------
# Structure ground truth (CTKT's SPNet target, ctkt_dsr.md §5.3): edges of the HR depth map.

STRUCTURE_METHODS = ('sobel', 'canny')
_SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64) / 8.0


def _sobel(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(gx, gy) of an (H, W) map, replicate borders, normalised so a unit ramp gives 1."""
  gx = ndimage.correlate(d, _SOBEL, mode='nearest')
  gy = ndimage.correlate(d, _SOBEL.T, mode='nearest')
  return gx, gy


def structure_edges(depth: np.ndarray, valid: np.ndarray | None = None, method: str = 'sobel',
                    low: float = 0.04, high: float = 0.1, sigma: float = 1.0) -> np.ndarray:
  """(H, W) float32 {0, 1} edge map of a depth map (1 = depth discontinuity).

  Thresholds are fractions of the map's largest gradient magnitude (MATLAB `edge` convention,
  the group's `edge(im, 'canny', 0.08)`), so they do not depend on the depth units:
    'sobel'  |Sobel gradient| >= high * max.
    'canny'  Gaussian blur (sigma, px), Sobel, non-maximum suppression along the gradient
             direction (4 sectors), hysteresis: weak pixels (>= low * max) kept where they are
             8-connected to a strong one (>= high * max).
  Invalid pixels (valid False / non-finite) are filled with their nearest valid value first (so
  holes make no edges), then set to 0 in the result.
  """
  if method not in STRUCTURE_METHODS:
    raise ValueError(f'structure method must be one of {STRUCTURE_METHODS}, got {method!r}')
  d = np.asarray(depth, np.float64)
  ok = np.isfinite(d) if valid is None else (np.asarray(valid, bool) & np.isfinite(d))
  if not ok.any():
    return np.zeros(d.shape, np.float32)
  if not ok.all():
    idx = ndimage.distance_transform_edt(~ok, return_distances=False, return_indices=True)
    d = d[tuple(idx)]
  if method == 'canny' and sigma > 0:
    d = ndimage.gaussian_filter(d, sigma, mode='nearest')
  gx, gy = _sobel(d)
  mag = np.hypot(gx, gy)
  top = mag.max()
  if top <= 0:
    return np.zeros(d.shape, np.float32)
  if method == 'sobel':
    edges = mag >= high * top
  else:
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    sector = (np.floor((angle + 22.5) / 45.0).astype(int)) % 4  # 0: x, 1: diag, 2: y, 3: anti
    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    padded = np.pad(mag, 1)
    h, w = mag.shape
    peak = np.zeros(mag.shape, bool)
    for s, (dy, dx) in offsets.items():
      fwd = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
      bwd = padded[1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
      peak |= (sector == s) & (mag >= fwd) & (mag >= bwd)
    weak = peak & (mag >= low * top)
    strong = peak & (mag >= high * top)
    labels, _ = ndimage.label(weak, structure=np.ones((3, 3)))
    keep = np.unique(labels[strong])
    edges = np.isin(labels, keep[keep > 0])
  return (edges & ok).astype(np.float32)
