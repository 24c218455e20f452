"""AdaptSegNet (issue 13): discriminator, gradient isolation, the step against the release's
iteration re-enacted in PyTorch (live when torch is present, else the committed golden file),
the release's duplicated SGD list, and the config checks."""
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.configlib import ConfigError
from jaxseg.methods.adaptsegnet import discriminator as disc
from jaxseg.methods.adaptsegnet.loss import domain_accuracy, gan_loss
from jaxseg.runner import config_checks
from jaxseg.training import optimizers
from methods import adaptsegnet_case as case

pytestmark = pytest.mark.usefixtures('fast_compile')
GOLDEN = os.path.join(os.path.dirname(__file__), 'data', 'adaptsegnet_golden.npz')
LOSS_NAMES = ('seg/level2', 'seg/level1', 'adv/level1', 'adv/level2', 'd/level1', 'd/level2')


def _torch():
  return pytest.importorskip('torch', reason='the live reference needs PyTorch')


@pytest.fixture(scope='module')
def golden():
  return dict(np.load(GOLDEN))


@pytest.fixture(scope='module')
def jax_clean():
  return case.jax_run(torch_duplicates=False)


# -- discriminator ------------------------------------------------------------------------
def _d_params():
  params = case.flat(case.initial_state().params)
  return {k.split('/', 2)[2]: v for k, v in params.items()
          if k.startswith('discriminator/level2/')}


def _unflat(flat_params):
  out = {}
  for k, v in flat_params.items():
    layer, leaf = k.split('/')
    out.setdefault(layer, {})[leaf] = jnp.asarray(v)
  return out


def test_discriminator_forward_matches_reference(golden):
  d = disc.FCDiscriminator(ndf=case.NDF)
  y = d.apply({'params': _unflat(_d_params())}, jnp.asarray(case.d_input(), jnp.float32))
  chex.assert_shape(y, golden['d_logits'].shape)
  assert golden['d_logits'].shape[1:3] == disc.output_size(case.d_input().shape[1:3])
  scale = np.abs(golden['d_logits']).max()
  np.testing.assert_allclose(np.asarray(y), golden['d_logits'], atol=1e-5 * scale, rtol=0)


def test_discriminator_forward_matches_live_torch(golden):
  torch = _torch()
  d = case.torch_discriminator(case.NUM_CLASSES, case.NDF)
  case.torch_d_load(d, _d_params())
  with torch.no_grad():
    y = d(torch.from_numpy(np.transpose(case.d_input(), (0, 3, 1, 2)))).numpy()
  np.testing.assert_allclose(np.transpose(y, (0, 2, 3, 1)), golden['d_logits'], atol=1e-12)
  # The import path: a torch state dict -> params, same output.
  sd = {k: v.numpy() for k, v in d.state_dict().items()}
  params = disc.from_torch_state_dict(sd, case.NUM_CLASSES, case.NDF)
  out = disc.FCDiscriminator(ndf=case.NDF).apply(
      {'params': params}, jnp.asarray(case.d_input(), jnp.float32))
  np.testing.assert_allclose(np.asarray(out), golden['d_logits'],
                             atol=1e-5 * np.abs(golden['d_logits']).max())


def test_discriminator_init_is_pytorch_default_and_upsampling():
  d = disc.FCDiscriminator(ndf=16)
  x = jnp.zeros((1, 64, 96, 5))
  params = d.init(jax.random.PRNGKey(3), x)['params']
  for name, (cin, cout) in zip(disc.LAYERS, disc.channels(5, 16)):
    bound = 1 / np.sqrt(16 * cin)
    k, b = np.asarray(params[name]['kernel']), np.asarray(params[name]['bias'])
    assert k.shape == (4, 4, cin, cout) and b.shape == (cout,)
    assert np.abs(k).max() <= bound and np.abs(b).max() <= bound
    assert abs(k.std() - bound / np.sqrt(3)) < 0.1 * bound  # uniform, not lecun-normal
  chex.assert_shape(d.apply({'params': params}, x), (1, 2, 3, 1))
  up = disc.FCDiscriminator(ndf=16, upsample_output=True).apply({'params': params}, x)
  chex.assert_shape(up, (1, 64, 96, 1))


def test_state_dict_that_does_not_fit_names_the_file():
  sd = {k: np.zeros(s, np.float32) for k, s in disc.torch_shapes(19, 64).items()}
  with pytest.raises(ValueError, match=r'd1\.pth.*7 classes.*wrong shape.*conv1\.weight'):
    disc.from_torch_state_dict(sd, 7, 64, name='d1.pth')


def test_gan_losses_by_hand():
  x = jnp.asarray([[-2.0, 0.5], [3.0, 0.0]]).reshape(1, 2, 2, 1)
  xs = np.asarray(x).ravel()
  bce1 = np.mean(np.log1p(np.exp(-xs)))  # label 1: -log sigmoid(x)
  np.testing.assert_allclose(gan_loss(x, 1.0, 'bce'), bce1, rtol=1e-6)
  np.testing.assert_allclose(gan_loss(x, 0.0, 'ls'), np.mean(xs ** 2), rtol=1e-6)
  np.testing.assert_allclose(domain_accuracy(x, 1.0, 'bce'), 0.5)  # 0.5 and 3.0 say target
  np.testing.assert_allclose(domain_accuracy(x, 0.0, 'ls'), 0.75)  # only 3.0 > 0.5


# -- gradient isolation -------------------------------------------------------------------
def test_each_term_reaches_only_its_own_tree():
  m = case.method()
  state = case.initial_state(m)
  batch = case.batches()[0]

  def grads(term):
    f = lambda p: m.objectives(p, state.batch_stats, batch['source'], batch['target'])[0][term]
    return jax.jit(jax.grad(f))(state.params)

  g_adv, g_disc, g_seg = grads('adv'), grads('disc'), grads('seg')
  nonzero = lambda t: sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(t))
  for tree in (g_adv['discriminator'], g_disc['generator'], g_seg['discriminator']):
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(tree))  # exactly zero
  assert nonzero(g_adv['generator']) > 0 and nonzero(g_disc['discriminator']) > 0
  assert nonzero(g_seg['generator']) > 0
  # The level-1 adversarial term reaches the conv4 classifier, never the conv5 one's ...
  assert nonzero(g_adv['generator']['aspp_aux']) > 0
  # ... and BN affine parameters and the never-computed ASPP branches get none.
  assert float(jnp.abs(g_seg['generator']['backbone']['bn1']['scale']).sum()) == 0
  assert float(jnp.abs(g_seg['generator']['aspp']['branch_2']['kernel']).sum()) == 0


# -- the step against the release's iteration ---------------------------------------------
def _compare(ours, ref_losses, ref_updates, ref_stats):
  """Losses rel 1e-5; per array: G updates to 2e-3 of their size (SGD), D updates to 1e-2
  (Adam divides by |g|, so float32 noise of small gradients shows), updated parameters to 1e-4
  of their size, BN running statistics to 1e-5 of theirs."""
  np.testing.assert_allclose(ours['losses'], ref_losses, rtol=1e-5)
  for key, ref in ref_updates.items():
    tol = 2e-3 if key.startswith('generator/') else 1e-2
    np.testing.assert_allclose(ours['updates'][key], ref, atol=tol * np.abs(ref).max() + 1e-12,
                               rtol=0, err_msg=key)
  for key, ref in ref_stats.items():
    np.testing.assert_allclose(ours['stats'][key], ref, atol=1e-5 * np.abs(ref).max(), rtol=0,
                               err_msg=key)


def _compare_golden(ours, golden, prefix=''):
  np.testing.assert_allclose(ours['losses'], golden[f'{prefix}losses'], rtol=1e-5)
  for kind, arrays in (('update', ours['updates']), ('stats', ours['stats'])):
    for key, s in case.summary(arrays).items():
      ref = golden[f'{prefix}{kind}/{key}']
      tol = 1e-5 if kind == 'stats' else (2e-3 if key.startswith('generator/') else 1e-2)
      np.testing.assert_allclose(s, ref, atol=tol * ref[0] + 1e-12, rtol=0, err_msg=key)


def test_step_matches_golden_reference(jax_clean, golden):
  _compare_golden(jax_clean, golden)
  updates = jax_clean['updates']
  assert np.abs(updates['generator/aspp_aux/branch_0/kernel']).max() > 0
  assert np.abs(updates['generator/backbone/bn1/scale']).max() == 0  # frozen affine
  assert np.abs(updates['generator/aspp/branch_3/kernel']).max() == 0  # never computed


def test_step_matches_live_pytorch_reenactment(jax_clean):
  _torch()
  ref = case.reference(torch_duplicates=False)
  _compare(jax_clean, ref['losses'], ref['updates'], ref['stats'])


def test_released_duplicated_sgd_list_matches_golden_and_differs(jax_clean, golden):
  dup = case.jax_run(torch_duplicates=True)
  _compare_golden(dup, golden, prefix='dup/')
  key = 'generator/backbone/layer1_0/conv1/kernel'
  ratio = np.linalg.norm(dup['updates'][key]) / np.linalg.norm(jax_clean['updates'][key])
  assert ratio > 2.0, ratio  # 3 copies: ~3 SGD moves per step


def test_repeated_sgd_equals_torch_with_a_tensor_listed_three_times():
  torch = _torch()
  w0 = np.random.default_rng(0).normal(size=(5,))
  grads = [np.random.default_rng(k).normal(size=(5,)) for k in (1, 2, 3)]
  p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
  with pytest.warns(UserWarning):
    opt = torch.optim.SGD([p, p, p], lr=0.1, momentum=0.9, weight_decay=0.05)
  tx = optimizers.sgd_pytorch_repeated(0.1, 0.9, 0.05, repeat=3)
  params = jnp.asarray(w0, jnp.float32)
  state = tx.init(params)
  for g in grads:
    p.grad = torch.from_numpy(g.copy())
    opt.step()
    updates, state = tx.update(jnp.asarray(g, jnp.float32), state, params)
    params = params + updates
  np.testing.assert_allclose(np.asarray(params), p.detach().numpy(), rtol=1e-5)


# -- configs and checks -------------------------------------------------------------------
@pytest.mark.parametrize('spec', ['', 'smoke', 'gta5', 'synthia', 'synthia,13', 'single_level',
                                  'source_only', 'lsgan', 'paper', 'gta5,released_optimizer'])
def test_recipes_validate(spec):
  from jaxseg.config_files import load_config  # pylint: disable=g-import-not-at-top
  c = load_config(f'configs/adaptsegnet.py:{spec}')
  config_checks.validate(c)
  if 'gta5' in spec:
    assert c.dataset.augment.resize_to == (720, 1280)
    assert c.dataset.target.augment.resize_to == (512, 1024)
    assert c.dataset.augment.eval_resize_to == (512, 1024) and c.model.align_corners
    assert c.loss.adv_weights == (0.0002, 0.001) and c.num_train_steps == 150000
    assert c.optimizer.decay_steps == 250000 and c.optimizer.param_groups.classifier.lr_mult == 10
  if 'synthia' in spec:
    n = 13 if '13' in spec else 16
    assert c.dataset.augment.resize_to == (760, 1280) and c.dataset.num_classes == n
    assert c.dataset.val_dataset.num_classes == n == c.dataset.target.num_classes


@pytest.mark.parametrize('field, value, match', [
    ('dataset.target', None, r'config\.dataset\.target=None: domain adaptation needs'),
    ('dataset.target.num_classes', 13, r'config\.dataset\.target\.num_classes=13'),
    ('discriminator.init_from', ('', '/nonexistent/d2.pth'),
     r'discriminator\.init_from\[1\]=.*d2\.pth.*no such file'),
])
def test_bad_input_names_the_field(field, value, match):
  from conftest import set_field  # pylint: disable=g-import-not-at-top
  from jaxseg.config_files import load_config  # pylint: disable=g-import-not-at-top
  c = load_config('configs/adaptsegnet.py:gta5')
  set_field(c, field, value)
  with pytest.raises(ConfigError, match=match):
    config_checks.validate(c)


def test_discriminator_file_of_the_wrong_class_count_is_refused(tmp_path):
  from jaxseg.config_files import load_config  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'd2.npz')
  np.savez(path, **{k: np.zeros(s, np.float32) for k, s in disc.torch_shapes(16, 64).items()})
  c = load_config('configs/adaptsegnet.py:gta5')
  c.discriminator.init_from = ('', path)
  with pytest.raises(ConfigError, match=r'init_from\[1\].*d2\.npz.*19 classes'):
    config_checks.validate(c)
