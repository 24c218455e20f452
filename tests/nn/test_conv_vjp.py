"""conv2d_matmul_wgrad: forward and both gradients equal lax.conv_general_dilated's autodiff."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxseg.nn.conv_vjp import auto_strategy, conv2d_matmul_wgrad

COUT = 5


def _ref(x, w, strides, padding, dilation, groups=1):
  return lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                  feature_group_count=groups)


def _inputs(k, cin, hw=(9, 11), dtype=jnp.float32, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal((2, *hw, cin)), dtype)
  w = jnp.asarray(rng.standard_normal((k, k, cin, COUT)) / np.sqrt(k * k * cin), dtype)
  return x, w


def _vjp(conv, x, w, seed=1):
  """Output, dx, dw of conv at (x, w) for a fixed random cotangent, in one jit."""
  shape = jax.eval_shape(conv, x, w)
  g = jnp.asarray(np.random.default_rng(seed).standard_normal(shape.shape), shape.dtype)

  @jax.jit
  def f(x, w, g):
    y, pullback = jax.vjp(conv, x, w)
    return (y, *pullback(g))
  return f(x, w, g)


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def _cases():
  """1x1: stride x padding. 3x3: the full product of stride, dilation, padding and strategy
  (Cin 8 with 'same', 3 with zero padding). 7x7 (slow to compile: 49 taps): a covering subset."""
  for s in (1, 2):
    for pad, cin in (('same', 8), ('zero', 3)):
      yield 1, s, 1, pad, cin, 'auto'
      for d in (1, 2, 4):
        for wgrad in ('im2col', 'per_tap'):
          yield 3, s, d, pad, cin, wgrad
  yield from [(7, 2, 1, 'same', 3, 'per_tap'), (7, 2, 1, 'same', 3, 'im2col'),
              (7, 1, 2, 'zero', 8, 'im2col'), (7, 1, 4, 'same', 8, 'per_tap'),
              (7, 2, 4, 'zero', 3, 'im2col'), (7, 1, 1, 'zero', 8, 'per_tap')]


@pytest.mark.parametrize('k,s,d,pad,cin,wgrad', list(_cases()))
def test_matches_xla_autodiff(k, s, d, pad, cin, wgrad):
  if pad == 'same':
    p = d * (k - 1) // 2
    padding = ((p, p), (p, p)) if k > 1 else ((1, 0), (0, 2))  # 1x1: asymmetric padding
  else:
    padding = ((0, 0), (0, 0))
  eff = d * (k - 1) + 1
  hw = (9, 11) if eff <= 9 else (eff + 2, eff + 4)  # odd, non-square; big enough for 'zero'
  x, w = _inputs(k, cin, hw)
  ref = _vjp(lambda x, w: _ref(x, w, (s, s), padding, (d, d)), x, w)
  got = _vjp(lambda x, w: conv2d_matmul_wgrad(x, w, (s, s), padding, (d, d), wgrad=wgrad), x, w)
  for name, a, b in zip(('y', 'dx', 'dw'), got, ref):
    assert a.shape == b.shape and a.dtype == b.dtype, name
    assert _rel(a, b) < 1e-5, (name, _rel(a, b))


def test_asymmetric_padding_and_int_args():
  x, w = _inputs(3, 8, (10, 7))
  padding = ((2, 0), (1, 3))
  ref = _vjp(lambda x, w: _ref(x, w, (2, 1), padding, (2, 3)), x, w)
  for wgrad in ('auto', 'im2col', 'per_tap'):
    got = _vjp(lambda x, w: conv2d_matmul_wgrad(x, w, (2, 1), padding, (2, 3), wgrad=wgrad), x, w)
    for a, b in zip(got, ref):
      assert _rel(a, b) < 1e-5
  # int strides/dilation and string padding
  ref = _vjp(lambda x, w: _ref(x, w, (1, 1), 'SAME', (2, 2)), x, w)
  got = _vjp(lambda x, w: conv2d_matmul_wgrad(x, w, 1, 'SAME', 2), x, w)
  for a, b in zip(got, ref):
    assert _rel(a, b) < 1e-5


@pytest.mark.parametrize('k,s,d,wgrad', [(1, 2, 1, 'auto'), (3, 1, 2, 'im2col'),
                                         (3, 1, 2, 'per_tap'), (7, 2, 1, 'auto')])
def test_bfloat16(k, s, d, wgrad):
  p = d * (k - 1) // 2
  padding = ((p, p), (p, p))
  x, w = _inputs(k, 8)
  xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
  conv = lambda x, w: conv2d_matmul_wgrad(x, w, s, padding, d, wgrad=wgrad)
  ref = _vjp(lambda x, w: _ref(x, w, (s, s), padding, (d, d)), xb.astype(jnp.float32),
             wb.astype(jnp.float32))
  got = _vjp(conv, xb, wb)
  for name, a, b in zip(('y', 'dx', 'dw'), got, ref):
    assert a.dtype == jnp.bfloat16, name
    assert _rel(a, b) < 2e-2, (name, _rel(a, b))
  # Mixed: bf16 activations, f32 kernel -> computed in f32, each gradient in its input's dtype.
  y, dx, dw = _vjp(conv, xb, w)
  assert (y.dtype, dx.dtype, dw.dtype) == (jnp.float32, jnp.bfloat16, jnp.float32)


def test_jit_grad_of_a_loss_and_second_order():
  x, w1 = _inputs(3, 3, seed=2)
  w2 = _inputs(1, COUT, seed=3)[1]

  def loss(params, x, conv):
    h = jax.nn.relu(conv(x, params[0], (2, 2), ((2, 2), (2, 2)), (2, 2)))
    return jnp.sum(conv(h, params[1], (1, 1), ((0, 0), (0, 0)), (1, 1)) ** 2)

  mine = lambda x, w, s, p, d: conv2d_matmul_wgrad(x, w, s, p, d)
  g_ref = jax.jit(jax.grad(loss), static_argnums=2)((w1, w2), x, _ref)
  g_got = jax.jit(jax.grad(loss), static_argnums=2)((w1, w2), x, mine)
  for a, b in zip(g_got, g_ref):
    assert _rel(a, b) < 1e-5
  # Reverse-over-reverse (e.g. gradient penalties): grad of the squared gradient norm.
  gn = lambda params, conv: sum(jnp.sum(t ** 2) for t in jax.grad(loss)(params, x, conv))
  h_ref = jax.jit(jax.grad(gn), static_argnums=1)((w1, w2), _ref)
  h_got = jax.jit(jax.grad(gn), static_argnums=1)((w1, w2), mine)
  for a, b in zip(h_got, h_ref):
    assert _rel(a, b) < 1e-4


def test_pmap():
  n = jax.local_device_count()
  x, w = _inputs(3, 3, seed=4)
  xs = jnp.stack([x] * n)

  def grads(x, w, conv):
    g = jax.grad(lambda w: jnp.sum(conv(x, w, 1, ((1, 1), (1, 1)), 1) ** 2))(w)
    return jax.lax.pmean(g, 'i')

  mine = lambda x, w, s, p, d: conv2d_matmul_wgrad(x, w, s, p, d)
  got = jax.pmap(functools.partial(grads, conv=mine), axis_name='i', in_axes=(0, None))(xs, w)
  ref = jax.grad(lambda w: jnp.sum(_ref(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1)) ** 2))(w)
  assert _rel(got[0], ref) < 1e-5


def test_weight_gradient_has_no_convolution():
  """The point of the module: XLA's slow weight-gradient convolution is gone (and 1x1 forward)."""
  for k in (1, 3):
    x, w = _inputs(k, 8)
    conv = lambda x, w: conv2d_matmul_wgrad(x, w, 1, ((k // 2,) * 2,) * 2, 1)
    g = jnp.ones(conv(x, w).shape)
    dw = jax.jit(lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    assert 'convolution(' not in dw.lower(x, w, g).compile().as_text()
    if k == 1:
      assert 'convolution(' not in jax.jit(conv).lower(x, w).compile().as_text()


def test_grouped_falls_back_and_bad_strategy_raises():
  x, w = _inputs(3, 8)
  w = w[:, :, :4, :4]  # two groups of 4 input channels, 4 outputs
  padding = ((1, 1), (1, 1))
  ref = _vjp(lambda x, w: _ref(x, w, (1, 1), padding, (1, 1), groups=2), x, w)
  got = _vjp(lambda x, w: conv2d_matmul_wgrad(x, w, 1, padding, 1, feature_group_count=2), x, w)
  for a, b in zip(got, ref):
    assert _rel(a, b) < 1e-6
  with pytest.raises(ValueError):
    conv2d_matmul_wgrad(x, _inputs(3, 8)[1], 1, padding, 1, wgrad='fft')


def test_auto_strategy():
  assert auto_strategy((1, 1, 2048, 512), (2, 33, 33, 512)) == 'matmul'
  assert auto_strategy((7, 7, 3, 64), (2, 161, 161, 64)) == 'per_tap'  # RGB stem
  assert auto_strategy((3, 3, 512, 512), (2, 33, 33, 512)) == 'per_tap'  # large map
  assert auto_strategy((3, 3, 512, 512), (2, 17, 17, 512)) == 'im2col'  # short contraction


@pytest.mark.parametrize('hw,cin,cout,d,padding', [
    ((9, 11), 64, 3, (2, 3), ((2, 2), (3, 3))),     # 'same', anisotropic dilation
    ((13, 13), 100, 5, (24, 24), ((24, 24), (24, 24))),  # ASPP rate 24 on a small map
    ((10, 7), 48, 2, (1, 2), ((2, 0), (1, 3))),     # asymmetric padding
    ((9, 9), 60, 1, (1, 1), ((0, 0), (0, 0))),      # 'valid'
])
def test_narrow_matches_xla_autodiff(hw, cin, cout, d, padding):
  """Narrow stride-1 KxK convolutions (ASPP: Cin >= 2 * K*K*Cout) take the one-matmul path."""
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.standard_normal((2, *hw, cin)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin), jnp.float32)
  assert auto_strategy(w.shape, (2, *hw, cout), strides=(1, 1)) == 'narrow'
  assert auto_strategy(w.shape, (2, *hw, cout), strides=(2, 2)) != 'narrow'
  ref = _vjp(lambda x, w: _ref(x, w, (1, 1), padding, d), x, w)
  for wgrad in ('auto', 'narrow'):
    conv = functools.partial(lambda x, w, wg: conv2d_matmul_wgrad(x, w, 1, padding, d, wgrad=wg),
                             wg=wgrad)
    got = _vjp(conv, x, w)
    for name, a, b in zip(('y', 'dx', 'dw'), got, ref):
      assert a.shape == b.shape and a.dtype == b.dtype, name
      assert _rel(a, b) < 1e-5, (name, _rel(a, b))
  g = jnp.ones(ref[0].shape)
  step = jax.jit(lambda x, w, g: jax.vjp(conv, x, w)[1](g))
  assert 'convolution(' not in step.lower(x, w, g).compile().as_text()
  # bfloat16 compute through the narrow path: outputs and gradients in bfloat16.
  xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
  got = _vjp(conv, xb, wb)
  assert all(a.dtype == jnp.bfloat16 for a in got)
  for name, a, b in zip(('y', 'dx', 'dw'), got, ref):
    assert _rel(a, b) < 3e-2, (name, _rel(a, b))
  # Strided: 'narrow' falls back to the custom-VJP path, same result as XLA.
  ref2 = _vjp(lambda x, w: _ref(x, w, (2, 2), padding, d), x, w)
  got2 = _vjp(lambda x, w: conv2d_matmul_wgrad(x, w, 2, padding, d, wgrad='narrow'), x, w)
  for a, b in zip(got2, ref2):
    assert _rel(a, b) < 1e-5


@pytest.mark.parametrize('k,d,padding,cin,cout', [
    (3, (1, 1), ((1, 1), (1, 1)), 8, 5), (3, (2, 3), ((2, 2), (3, 3)), 3, 8),
    (3, (4, 4), ((0, 0), (0, 0)), 8, 5), (3, (2, 1), ((2, 0), (1, 3)), 8, 5),
    (7, (1, 2), ((3, 3), (6, 6)), 3, 5)])
def test_gshift_matches_xla_autodiff(k, d, padding, cin, cout):
  """Stride-1 KxK (not narrow): weight gradient from the shifted output gradient, one matmul."""
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.standard_normal((2, 15, 13, cin)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
  assert auto_strategy(w.shape, (2, 15, 13, cout), strides=(1, 1)) == 'gshift'
  ref = _vjp(lambda x, w: _ref(x, w, (1, 1), padding, d), x, w)
  for wgrad in ('auto', 'gshift'):
    conv = functools.partial(lambda x, w, wg: conv2d_matmul_wgrad(x, w, 1, padding, d, wgrad=wg),
                             wg=wgrad)
    got = _vjp(conv, x, w)
    for name, a, b in zip(('y', 'dx', 'dw'), got, ref):
      assert a.shape == b.shape and a.dtype == b.dtype, name
      assert _rel(a, b) < 1e-5, (name, _rel(a, b))
  # Strided: 'gshift' falls back to 'auto' (x windows), same result as XLA.
  ref2 = _vjp(lambda x, w: _ref(x, w, (2, 2), padding, d), x, w)
  got2 = _vjp(lambda x, w: conv2d_matmul_wgrad(x, w, 2, padding, d, wgrad='gshift'), x, w)
  for a, b in zip(got2, ref2):
    assert _rel(a, b) < 1e-5
