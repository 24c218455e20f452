"""PAD-Net model and distillation-module tests (tiny: ResNet-14 width 8, N=16, 64x64, 5 classes).

Parameters are drawn with NumPy from `jax.eval_shape` shapes: initialising through Flax compiles
one random kernel per parameter shape, which is slow on a shared CPU.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import np_variables
from jaxseg.heads.padnet_distillation import Distillation, concat_distillation
from jaxseg.methods.padnet.model import INTERMEDIATE_TASKS, ConvBNReLU, PADNet

B, H, W, K, N = 2, 64, 64, 5, 16
TINY = dict(num_classes=K, features=N, backbone_depth=14, backbone_width=8, aggregate_features=8)
CH = {'depth': N, 'parsing': N, 'normals': N // 2, 'contours': N // 2}


pytestmark = pytest.mark.usefixtures('fast_compile')  # tiny models: cheaper XLA compiles


def _shapes(model, capture=False):
  x = jax.ShapeDtypeStruct((B, H, W, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  kw = dict(capture_intermediates=True, mutable=['intermediates']) if capture else {}
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, **kw), variables, x)
  return variables, out


def _check_multitask_outputs(out):
  chex.assert_shape(out['logits'], (B, H, W, K))
  chex.assert_shape(out['depth'], (B, H, W))
  inter = out['intermediate']
  assert set(inter) == set(INTERMEDIATE_TASKS)
  chex.assert_shape(inter['depth'], (B, H // 4, W // 4))
  chex.assert_shape(inter['parsing'], (B, H // 4, W // 4, K))
  chex.assert_shape(inter['normals'], (B, H // 4, W // 4, 3))
  chex.assert_shape(inter['contours'], (B, H // 4, W // 4))


@pytest.mark.parametrize('distillation,gate_source,distill_input', [
    ('none', 'target', 'predictions'), ('A', 'target', 'predictions'), ('A', 'target', 'features'),
    ('B', 'target', 'predictions'), ('C', 'target', 'predictions'), ('C', 'source', 'features')])
def test_multitask_shapes(distillation, gate_source, distill_input):
  model = PADNet(**TINY, distillation=distillation, gate_source=gate_source,
                 distill_input=distill_input)
  variables, (out, state) = _shapes(model, capture=True)
  _check_multitask_outputs(out)
  params, inter = variables['params'], state['intermediates']
  # Front-end at 1/8 with layer4 (32 * width) + 3 aggregated maps.
  chex.assert_shape(params['branch_depth']['deconv']['kernel'], (4, 4, 32 * 8 + 3 * 8, N))
  for t in INTERMEDIATE_TASKS:
    chex.assert_shape(inter[f'branch_{t}']['__call__'][0], (B, H // 4, W // 4, CH[t]))
    has_embed = f'embed_{t}' in params
    assert has_embed == (distill_input == 'predictions' and distillation != 'none')
  dec_in = 3 * N if distillation == 'A' else N  # A: concat of N + N + N/2 + N/2
  for k in ('depth', 'parsing'):
    dec = params[f'decoder_{k}']
    chex.assert_shape(dec['deconv1']['deconv']['kernel'], (4, 4, dec_in, N // 2))
    chex.assert_shape(dec['deconv2']['deconv']['kernel'], (4, 4, N // 2, N // 4))
    chex.assert_shape(inter[f'decoder_{k}']['deconv1']['__call__'][0], (B, H // 2, W // 2, N // 2))
  if distillation in ('none', 'A'):
    assert 'distillation' not in params
    return
  dist = params['distillation']
  messages = {n for n in dist if n.startswith('message_')}
  assert messages == {f'message_{t}_to_{k}' for k in ('depth', 'parsing')
                      for t in INTERMEDIATE_TASKS if t != k}
  chex.assert_shape(dist['message_normals_to_depth']['kernel'], (3, 3, N // 2, N))
  gates = {n for n in dist if n.startswith('gate_')}
  if distillation == 'B':
    assert not gates
  elif gate_source == 'target':
    assert gates == {'gate_depth', 'gate_parsing'}
    chex.assert_shape(dist['gate_depth']['kernel'], (3, 3, N, N))
  else:
    assert gates == {n.replace('message_', 'gate_') for n in messages}
    chex.assert_shape(dist['gate_contours_to_parsing']['kernel'], (3, 3, N // 2, N))
  for k in ('depth', 'parsing'):
    chex.assert_shape(inter['distillation']['__call__'][0][k], (B, H // 4, W // 4, N))


@pytest.mark.parametrize('tasks,keys', [('depth', {'depth'}), ('parsing', {'logits'}),
                                        ('depth_parsing', {'depth', 'logits'})])
def test_single_task_shapes(tasks, keys):
  variables, out = _shapes(PADNet(**TINY, tasks=tasks))
  assert set(out) == keys
  if 'depth' in out:
    chex.assert_shape(out['depth'], (B, H, W))
  if 'logits' in out:
    chex.assert_shape(out['logits'], (B, H, W, K))
  assert not any(n.startswith(('inter_pred_', 'embed_', 'distillation'))
                 for n in variables['params'])


def test_output_resized_to_input_when_not_divisible_by_8():
  x = jax.ShapeDtypeStruct((1, 60, 52, 3), jnp.float32)
  model = PADNet(**TINY, distillation='B')
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  chex.assert_shape(out['logits'], (1, 60, 52, K))
  chex.assert_shape(out['depth'], (1, 60, 52))


def test_forward_train_and_eval_finite():
  model = PADNet(**TINY, distillation='C')
  x = jnp.asarray(np.random.default_rng(1).normal(size=(B, H, W, 3)), jnp.float32)
  variables = np_variables(model, x, train=False)
  out, state = model.apply(variables, x, train=True, mutable=['batch_stats'])
  _check_multitask_outputs(out)
  chex.assert_tree_all_finite(out)
  assert not np.allclose(state['batch_stats']['branch_depth']['bn']['mean'], 0.0)
  out_eval = model.apply(variables, x, train=False)
  chex.assert_tree_all_finite(out_eval)


def test_deconv_geometry_matches_pytorch_convtranspose():
  """2x upsampling with y[o] = sum_i x[i] w_torch[o + 1 - 2i], w_torch = flipped Flax kernel."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(1, 3, 2, 1)), jnp.float32)
  module = ConvBNReLU(1, kernel_size=4, transpose=True)
  variables = np_variables(module, x, train=False)
  y = module.apply(variables, x, False)  # BN (eval): running mean 0, var 1, scale 1
  w = np.asarray(variables['params']['deconv']['kernel'])[::-1, ::-1, 0, 0]
  ref = np.zeros((6, 4))
  for i, j, o, q in np.ndindex(3, 2, 6, 4):
    a, b = o + 1 - 2 * i, q + 1 - 2 * j
    if 0 <= a < 4 and 0 <= b < 4:
      ref[o, q] += x[0, i, j, 0] * w[a, b]
  bias = float(variables['params']['bn']['bias'][0])
  np.testing.assert_allclose(y[0, :, :, 0], np.maximum(ref / np.sqrt(1 + 1e-5) + bias, 0),
                             atol=1e-5)


def test_invalid_arguments():
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  for bad in (dict(distillation='D'), dict(gate_source='both'), dict(tasks='normals'),
              dict(distill_input='logits'), dict(features=18)):
    with pytest.raises(ValueError):
      jax.eval_shape(lambda x: PADNet(**{**TINY, **bad}).init(jax.random.key(0), x, False), x)


# ------------------------------------------------------------------------------------------------
# Distillation modules against hand-written NumPy math.

def np_conv3x3(x, kernel):
  """'SAME' 3x3 conv, stride 1, NHWC x HWIO, written out as a sum of shifted matmuls."""
  x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
  _, h, w, _ = x.shape
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return sum(np.einsum('bhwc,co->bhwo', xp[:, i:i + h, j:j + w], kernel[i, j])
             for i in range(3) for j in range(3))


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _feats(seed=0, same=False):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(2, 5, 4, 3))
  shapes = {'a': (2, 5, 4, 3), 'b': (2, 5, 4, 3), 'c': (2, 5, 4, 2)}
  feats = {t: (a[..., :s[-1]] if same else rng.normal(size=s)) for t, s in shapes.items()}
  return {t: jnp.asarray(v, jnp.float32) for t, v in feats.items()}


def _module_and_params(mode, gate_source, feats, seed=0):
  module = Distillation(targets=('a', 'b'), mode=mode, gate_source=gate_source)
  params = np_variables(module, feats, seed=seed)['params']
  return module, params


def test_module_a_concat():
  feats = _feats()
  out = concat_distillation(feats, ('c', 'a', 'b'))
  chex.assert_shape(out, (2, 5, 4, 8))
  np.testing.assert_array_equal(out[..., :2], feats['c'])
  np.testing.assert_array_equal(out[..., 5:], feats['b'])


def test_module_b_formula():
  feats = _feats()
  module, params = _module_and_params('B', 'target', feats)
  out = module.apply({'params': params}, feats)
  for k in ('a', 'b'):
    want = np.asarray(feats[k], np.float64) + sum(
        np_conv3x3(feats[t], params[f'message_{t}_to_{k}']['kernel']) for t in feats if t != k)
    np.testing.assert_allclose(out[k], want, rtol=1e-5, atol=1e-5)
  assert set(out) == {'a', 'b'}


@pytest.mark.parametrize('gate_source', ['target', 'source'])
def test_module_c_formula(gate_source):
  feats = _feats()
  module, params = _module_and_params('C', gate_source, feats)
  out = module.apply({'params': params}, feats)
  for k in ('a', 'b'):
    want = np.asarray(feats[k], np.float64)
    for t in feats:
      if t == k:
        continue
      msg = np_conv3x3(feats[t], params[f'message_{t}_to_{k}']['kernel'])
      if gate_source == 'target':  # paper: G_k = sigmoid(W_g^k * F_k)
        gate = sigmoid(np_conv3x3(feats[k], params[f'gate_{k}']['kernel']))
      else:  # survey: mask from the sending task's features
        gate = sigmoid(np_conv3x3(feats[t], params[f'gate_{t}_to_{k}']['kernel']))
      want = want + gate * msg
    np.testing.assert_allclose(out[k], want, rtol=1e-5, atol=1e-5)


def test_gate_source_variants():
  """With equal kernels the two gate forms agree iff every task has the same features."""
  rng = np.random.default_rng(5)
  f = jnp.asarray(rng.normal(size=(2, 5, 4, 3)), jnp.float32)
  same = {'a': f, 'b': f, 'c': f}
  tgt, p_tgt = _module_and_params('C', 'target', same)
  src, p_src = _module_and_params('C', 'source', same)
  p_src = {n: (p_tgt[n] if n.startswith('message_') else p_tgt['gate_' + n.split('_to_')[1]])
           for n in p_src}  # gate_{t}_to_{k} <- W_g^k
  o_t, o_s = tgt.apply({'params': p_tgt}, same), src.apply({'params': p_src}, same)
  for k in ('a', 'b'):
    np.testing.assert_allclose(o_t[k], o_s[k], rtol=1e-5, atol=1e-6)
  diff = {t: jnp.asarray(rng.normal(size=(2, 5, 4, 3)), jnp.float32) for t in 'abc'}
  o_t, o_s = tgt.apply({'params': p_tgt}, diff), src.apply({'params': p_src}, diff)
  assert not np.allclose(o_t['a'], o_s['a'], atol=1e-3)
  # Target gate: with F_k = 0 the gate is sigmoid(0) = 0.5 whatever the sources are.
  zero_k = dict(diff, a=jnp.zeros_like(diff['a']))
  o = tgt.apply({'params': p_tgt}, zero_k)
  want = 0.5 * sum(np_conv3x3(diff[t], p_tgt[f'message_{t}_to_a']['kernel']) for t in 'bc')
  np.testing.assert_allclose(o['a'], want, rtol=1e-5, atol=1e-5)


def test_padnet_loss_on_model_outputs_traces():
  """Loss and gradient shapes through the whole model (traced only, nothing compiled)."""
  from jaxseg.methods.padnet.loss import padnet_loss
  model = PADNet(**TINY, distillation='C', gate_source='source')
  sds = jax.ShapeDtypeStruct
  x = sds((B, H, W, 3), jnp.float32)
  batch = {'label': sds((B, H, W), jnp.int32), 'depth': sds((B, H, W), jnp.float32),
           'normals': sds((B, H, W, 3), jnp.float32), 'contours': sds((B, H, W), jnp.uint8),
           'valid': sds((B, H, W), jnp.bool_), 'mask': sds((B,), jnp.bool_)}
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)

  def loss(params, batch_stats, x, batch):
    out, state = model.apply({'params': params, 'batch_stats': batch_stats}, x, train=True,
                             mutable=['batch_stats'])
    total, terms = padnet_loss(out, batch)
    return total, (terms, state)

  grads, (terms, _) = jax.eval_shape(jax.grad(loss, has_aux=True), variables['params'],
                                     variables['batch_stats'], x, batch)
  assert len(terms) == 6
  chex.assert_trees_all_equal_shapes(grads, variables['params'])
