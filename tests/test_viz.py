"""Tests for jaxseg.viz."""

import os

import numpy as np
import pytest
from PIL import Image

from jaxseg import viz


def test_palettes():
  city = viz.cityscapes_palette()
  assert city.shape == (19, 3) and city.dtype == np.uint8
  assert tuple(city[0]) == (128, 64, 128) and tuple(city[18]) == (119, 11, 32)
  voc = viz.pascal_voc_palette()
  assert voc.shape == (256, 3) and voc.dtype == np.uint8
  assert [tuple(c) for c in voc[:4]] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
  assert tuple(voc[15]) == (192, 128, 128)  # person
  assert len({tuple(c) for c in voc}) == 256
  assert viz.pascal_voc_palette(21).shape == (21, 3)
  gen = viz.generic_palette(150)
  assert gen.shape == (150, 3) and gen.dtype == np.uint8
  assert len({tuple(c) for c in gen}) == 150
  assert (gen.astype(int).sum(axis=1) > 0).all()


def test_colorize_labels():
  pal = np.array([[10, 20, 30], [40, 50, 60]], np.uint8)
  lab = np.array([[0, 1], [255, 1]])
  out = viz.colorize_labels(lab, pal, ignore_color=(1, 2, 3))
  assert out.shape == (2, 2, 3) and out.dtype == np.uint8
  assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[0, 1]) == (40, 50, 60)
  assert tuple(out[1, 0]) == (1, 2, 3)
  assert viz.colorize_labels(lab[None], pal).shape == (1, 2, 2, 3)
  with pytest.raises(ValueError):
    viz.colorize_labels(np.array([[2]]), pal)


def test_colorize_depth_invalid_black_and_near_bright():
  depth = np.array([[0.0, 1.0, 5.0], [np.nan, 2.0, 10.0]], np.float32)
  out = viz.colorize_depth(depth)
  assert out.shape == (2, 3, 3) and out.dtype == np.uint8
  assert tuple(out[0, 0]) == (0, 0, 0) and tuple(out[1, 0]) == (0, 0, 0)
  valid = out[[0, 0, 1, 1], [1, 2, 1, 2]]
  assert (valid.astype(int).sum(axis=1) > 0).all()
  assert out[0, 1].astype(int).sum() > out[1, 2].astype(int).sum()  # near brighter than far
  fixed = viz.colorize_depth(depth, vmin=0.0, vmax=20.0)
  assert not np.array_equal(fixed, out)
  assert viz.colorize_depth(np.zeros((4, 4))).sum() == 0  # all invalid


def test_colorize_normals_and_contours():
  n = np.array([[[0, 0, -1], [0, 0, 0]]], np.float32)
  out = viz.colorize_normals(n)
  assert tuple(out[0, 0]) == (128, 128, 0) and tuple(out[0, 1]) == (0, 0, 0)
  c = viz.colorize_contours(np.array([[0, 1], [1, 0]], np.uint8))
  assert c.shape == (2, 2, 3)
  assert tuple(c[0, 1]) == (255, 255, 255) and tuple(c[0, 0]) == (0, 0, 0)
  assert tuple(viz.colorize_contours(np.array([[0.7]]))[0, 0]) == (255, 255, 255)


def test_side_by_side_shapes():
  a = np.zeros((10, 20, 3), np.uint8)
  b = np.full((20, 10), 200, np.uint8)
  out = viz.side_by_side([a, b], pad=4)
  # a is resized to 20 x 40; widths 40 + 10 and three pads.
  assert out.shape == (20 + 8, 40 + 10 + 12, 3) and out.dtype == np.uint8
  assert (out[4:24, 4:44] == 0).all() and (out[4:24, 48:58] == 200).all()
  titled = viz.side_by_side([a, b], titles=['x', 'y'], pad=0)
  assert titled.shape == (20 + 14, 50, 3)
  with pytest.raises(ValueError):
    viz.side_by_side([a], titles=['x', 'y'])


def test_save_png_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
  gray = rng.integers(0, 256, size=(7, 9), dtype=np.uint8)
  deep = rng.integers(0, 65536, size=(5, 6), dtype=np.uint16)
  for name, arr in [('rgb.png', rgb), ('sub/gray.png', gray), ('deep.png', deep)]:
    path = tmp_path / name
    viz.save_png(path, arr)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), arr)
  viz.save_png(tmp_path / 'rgb.png', gray)  # overwrite in place
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'rgb.png')), gray)
  leftovers = [f for f in os.listdir(tmp_path) if f.endswith('.tmp')]
  assert leftovers == []
  with pytest.raises(ValueError):
    viz.save_png(tmp_path / 'bad.png', np.zeros((3, 3), np.float32))
