"""Depth, normals and contour metrics against hand-computed values; additivity of the sums."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.metrics.contours import contour_metric_sums, contour_thresholds, summarize_contours
from jaxseg.metrics.depth import depth_metric_sums, eigen_crop_mask, summarize_depth
from jaxseg.metrics.normals import histogram_median, normals_metric_sums, summarize_normals

f32 = functools.partial(jnp.asarray, dtype=jnp.float32)
add = lambda a, b: jax.tree.map(lambda x, y: np.asarray(x, np.float64) + np.asarray(y), a, b)


pytestmark = pytest.mark.usefixtures('fast_compile')  # tiny models: cheaper XLA compiles


def _assert_sums_additive(fn, *arrays, **kwargs):
  whole = fn(*arrays, **kwargs)
  halves = add(fn(*(a[:1] for a in arrays), **kwargs), fn(*(a[1:] for a in arrays), **kwargs))
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6), whole, halves)


# ---------------------------------------------------------------------------------------- depth

def test_depth_metrics_hand_computed():
  gt = f32([[[1.0, 2.0], [4.0, 0.0]]])  # last pixel invalid
  pred = f32([[[1.2, 3.0], [7.6, 5.0]]])  # ratios 1.2, 1.5, 1.9
  m = summarize_depth(depth_metric_sums(pred, gt))
  g, p = np.array([1.0, 2.0, 4.0]), np.array([1.2, 3.0, 7.6])
  want = {'abs_rel': np.mean(np.abs(p - g) / g), 'sq_rel': np.mean((p - g) ** 2 / g),
          'rmse': np.sqrt(np.mean((p - g) ** 2)),
          'rmse_log': np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2)),
          'log10': np.mean(np.abs(np.log10(p) - np.log10(g))), 'mae': np.mean(np.abs(p - g)),
          'd1': 1 / 3, 'd2': 2 / 3, 'd3': 1.0, 'count': 3}
  for k, v in want.items():
    np.testing.assert_allclose(m[k], v, rtol=1e-6, err_msg=k)


def test_depth_clipping_and_range():
  gt = f32([[[0.5, 12.0], [4.0, 9.0]]])
  pred = f32([[[0.0, 3.0], [20.0, 9.0]]])
  # 'mask': gt 12 is outside (1e-3, 10) and dropped; pred 0 -> 1e-3, pred 20 -> 10.
  m = summarize_depth(depth_metric_sums(pred, gt))
  p, g = np.array([1e-3, 10.0, 9.0]), np.array([0.5, 4.0, 9.0])
  assert m['count'] == 3
  np.testing.assert_allclose(m['abs_rel'], np.mean(np.abs(p - g) / g), rtol=1e-5)
  # 'clip' (big_vision): gt 12 -> 10 and kept.
  m = summarize_depth(depth_metric_sums(pred, gt, gt_range='clip'))
  p, g = np.array([1e-3, 3.0, 10.0, 9.0]), np.array([0.5, 10.0, 4.0, 9.0])
  assert m['count'] == 4
  np.testing.assert_allclose(m['rmse'], np.sqrt(np.mean((p - g) ** 2)), rtol=1e-5)
  with pytest.raises(ValueError):
    depth_metric_sums(pred, gt, min_depth=0.0)


def test_depth_pixelwise_vs_per_image_and_masks():
  gt = f32([[[1.0, 1.0], [1.0, 1.0]], [[2.0, 0.0], [0.0, 0.0]]])
  pred = f32([[[2.0, 2.0], [2.0, 2.0]], [[2.0, 5.0], [5.0, 5.0]]])
  sums = depth_metric_sums(pred, gt)
  np.testing.assert_allclose(summarize_depth(sums)['abs_rel'], 4 / 5)  # 4 pixels 1.0, 1 pixel 0
  np.testing.assert_allclose(summarize_depth(sums, per_image=True)['abs_rel'], 0.5)
  np.testing.assert_allclose(summarize_depth(sums, per_image=True)['rmse'], 0.5)
  # mask (B,) drops example 0; valid drops pixels.
  m = summarize_depth(depth_metric_sums(pred, gt, mask=jnp.array([False, True])))
  assert m['count'] == 1 and m['abs_rel'] == 0.0
  valid = jnp.ones((2, 2, 2), bool).at[0, 0].set(False)
  assert summarize_depth(depth_metric_sums(pred, gt, valid))['count'] == 3
  _assert_sums_additive(depth_metric_sums, pred, gt)


def test_depth_resize_prediction():
  gt = jnp.full((1, 4, 4), 2.0)
  sums = depth_metric_sums(jnp.full((1, 2, 2, 1), 2.5), gt)
  np.testing.assert_allclose(summarize_depth(sums)['abs_rel'], 0.25)
  assert summarize_depth(sums)['count'] == 16
  sums = depth_metric_sums(jnp.full((1, 2, 2), 2.5), gt, resize='nearest')
  np.testing.assert_allclose(summarize_depth(sums)['mae'], 0.5)


def test_eigen_crop():
  m = eigen_crop_mask(480, 640)
  assert m.sum() == (471 - 45) * (601 - 41)
  assert m[45, 41] and m[470, 600] and not m[44, 41] and not m[45, 601]
  small = eigen_crop_mask(240, 320)  # bounds 22.5, 235.5, 20.5, 300.5 rounded half up
  rows, cols = np.nonzero(small.any(1))[0], np.nonzero(small.any(0))[0]
  assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (23, 236, 21, 301)
  gt = jnp.ones((1, 240, 320))
  sums = depth_metric_sums(gt, gt, eigen_crop=True)
  assert int(sums['count']) == small.sum()


# -------------------------------------------------------------------------------------- normals

def _normals():
  gt = np.zeros((2, 2, 2, 3), np.float32)
  gt[..., 2] = 1.0
  pred = gt.copy()
  pred[0, 0, 1] = [3.0, 0.0, 0.0]  # 90 deg
  pred[0, 1, 0] = [0.0, 1.0, 1.0]  # 45 deg
  pred[1, 0, 0] = [0.0, -0.2, 1.0]  # ~11.31 deg (just above 11.25)
  gt[1, 1, 1] = 0.0  # missing normal
  return f32(pred), f32(gt)


def test_normals_metrics_hand_computed():
  pred, gt = _normals()
  angles = np.array([0, 90, 45, 0, np.degrees(np.arctan(0.2)), 0, 0])
  m = summarize_normals(normals_metric_sums(pred, gt))
  assert m['count'] == 7
  np.testing.assert_allclose(m['mean'], angles.mean(), rtol=1e-5)
  np.testing.assert_allclose(m['rmse'], np.sqrt(np.mean(angles ** 2)), rtol=1e-5)
  np.testing.assert_allclose(m['median'], 0.0, atol=0.1)  # histogram resolution 0.1 deg
  np.testing.assert_allclose(m['within_11.25'], 100 * 4 / 7)
  np.testing.assert_allclose(m['within_22.5'], 100 * 5 / 7)
  np.testing.assert_allclose(m['within_30'], 100 * 5 / 7)
  # Exact angles of 0 and 90 deg.
  s = normals_metric_sums(pred[:1, :1], gt[:1, :1])
  np.testing.assert_allclose(float(s['sum']), 90.0, rtol=1e-6)
  m = summarize_normals(normals_metric_sums(pred, gt, mask=jnp.array([True, False])))
  assert m['count'] == 4
  np.testing.assert_allclose(m['median'], 22.5, atol=0.1)  # median of 0, 0, 45, 90
  _assert_sums_additive(normals_metric_sums, pred, gt)


def test_histogram_median():
  hist = np.zeros(180)
  hist[[10, 20, 30]] = 1  # values in bins [10, 11), [20, 21), [30, 31)
  assert 20.0 <= histogram_median(hist) <= 21.0
  assert np.isnan(histogram_median(np.zeros(4)))


# ------------------------------------------------------------------------------------- contours

def test_contour_f_measure_toy():
  gt = jnp.array([[[1, 1, 0, 0]]], jnp.uint8)
  prob = f32([[[0.9, 0.4, 0.6, 0.1]]])
  s = contour_metric_sums(prob, gt, num_thresholds=3, from_logits=False)  # t = .25, .5, .75
  # t=.25: TP 2 FP 1 -> P 2/3 R 1 F .8; t=.5: P .5 R .5 F .5; t=.75: P 1 R .5 F 2/3.
  m = summarize_contours(s)
  np.testing.assert_allclose(m['ods_f'], 0.8, rtol=1e-6)
  np.testing.assert_allclose((m['ods_threshold'], m['ods_precision'], m['ods_recall']),
                             (0.25, 2 / 3, 1.0), rtol=1e-6)
  np.testing.assert_array_equal(contour_thresholds(3), [0.25, 0.5, 0.75])
  # Logits input: sigmoid(logit(p)) == p.
  logits = jnp.log(prob / (1 - prob))
  m2 = summarize_contours(contour_metric_sums(logits, gt, num_thresholds=3))
  np.testing.assert_allclose(m2['ods_f'], 0.8, rtol=1e-6)


def test_contour_ods_vs_ois_and_masks():
  gt = jnp.array([[[1, 1, 0, 0]], [[1, 0, 0, 0]]], jnp.uint8)
  prob = f32([[[0.9, 0.4, 0.6, 0.1]], [[0.9, 0.6, 0.1, 0.1]]])
  s = contour_metric_sums(prob, gt, num_thresholds=3, from_logits=False)
  # Dataset counts per threshold (matched pred, pred, recalled gt; 3 gt):
  # .25: 3, 5, 3 -> F = 2*.6*1/1.6 = .75; .5: 2, 4, 2 -> P .5 R 2/3 F 4/7; .75: 2, 2, 2 -> F .8
  m = summarize_contours(s)
  np.testing.assert_allclose(m['ods_f'], 0.8, rtol=1e-6)
  np.testing.assert_allclose(m['ods_threshold'], 0.75)
  # OIS: image 0 best at .25 (2, 3, 2), image 1 best at .75 (1, 1, 1) -> P 3/4, R 1, F 6/7.
  np.testing.assert_allclose(m['ois_f'], 6 / 7, rtol=1e-6)
  np.testing.assert_array_equal(s['ois'], [3, 4, 3, 3])
  # mask drops image 1; valid drops pixel 2 of image 0.
  m = summarize_contours(contour_metric_sums(prob, gt, mask=jnp.array([True, False]),
                                             num_thresholds=3, from_logits=False))
  np.testing.assert_allclose(m['ods_f'], 0.8, rtol=1e-6)
  valid = jnp.ones((2, 1, 4), bool).at[0, 0, 2].set(False)
  s = contour_metric_sums(prob[:1], gt[:1], valid[:1], num_thresholds=3, from_logits=False)
  np.testing.assert_allclose(summarize_contours(s)['ods_f'], 1.0)  # t=.25: TP 2, FP 0
  _assert_sums_additive(functools.partial(contour_metric_sums, num_thresholds=3,
                                          from_logits=False), prob, gt)


def test_contour_tolerance():
  gt = np.zeros((1, 5, 5), np.uint8)
  gt[0, :, 1] = 1
  prob = np.zeros((1, 5, 5), np.float32)
  prob[0, :, 2] = 0.9  # edge shifted by one pixel
  s0 = contour_metric_sums(f32(prob), jnp.asarray(gt), from_logits=False)
  assert summarize_contours(s0)['ods_f'] == 0.0
  s1 = contour_metric_sums(f32(prob), jnp.asarray(gt), from_logits=False, tolerance=1)
  np.testing.assert_allclose(summarize_contours(s1)['ods_f'], 1.0)
  # Bilinear resizing of a low-resolution prediction to the gt size.
  s = contour_metric_sums(jnp.full((1, 2, 2, 1), 0.7), jnp.ones((1, 4, 4), jnp.uint8),
                          from_logits=False, num_thresholds=3)
  np.testing.assert_array_equal(s['num_gt'], 16)
  np.testing.assert_allclose(summarize_contours(s)['ods_f'], 1.0)


def test_metric_sums_jit_and_vmap_psum():
  """The sum functions jit, and per-device sums psum-ed over a mapped axis equal the whole."""
  rng = np.random.default_rng(0)
  depth_gt = f32(rng.uniform(0, 5, (4, 6, 8)))
  depth_pred = f32(rng.uniform(0.5, 5, (4, 3, 4)))
  normals = f32(rng.normal(size=(4, 6, 8, 3)))
  edges = jnp.asarray(rng.random((4, 6, 8)) < 0.3, jnp.uint8)
  mask = jnp.array([True, True, False, True])
  cases = [
      (functools.partial(depth_metric_sums, eigen_crop=True), (depth_pred, depth_gt)),
      (normals_metric_sums, (normals[:, ::2, ::2], normals)),
      (functools.partial(contour_metric_sums, tolerance=1), (depth_pred - 2.0, edges)),
  ]
  for fn, args in cases:
    eager = fn(*args, mask=mask)
    jitted = jax.jit(fn)(*args, mask=mask)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5),
                 eager, jitted)
    split = lambda x: x.reshape((2, 2) + x.shape[1:])
    psummed = jax.jit(jax.vmap(lambda *a: jax.lax.psum(fn(*a[:-1], mask=a[-1]), 'd'),
                               axis_name='d'))(
        *map(split, args), split(mask))
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x[0], y, rtol=1e-5, atol=1e-5),
                 psummed, eager)
