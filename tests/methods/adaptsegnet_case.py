"""The toy AdaptSegNet case shared by tests/methods/test_adaptsegnet.py and the script that
writes its golden file (tests/methods/make_adaptsegnet_golden.py).

Weights come from NumPy (seeded, in JAX layout), so the case needs no torch; the PyTorch side
(`torch_discriminator`, `torch_reenact`) is imported only where torch is present. The
re-enactment follows the release's iteration step by step (spec adaptsegnet.md §3) in float64:
G in train mode, BN affine frozen, D frozen during the adversarial backward, D on detached
softmax inputs with each half / 2, then SGD (1x backbone, 10x classifiers) and Adam steps.
"""
import numpy as np

NUM_CLASSES = 3
SRC_HW, TGT_HW = (41, 49), (33, 41)
WIDTH, NDF = 4, 4
LR_G, LR_D, HORIZON, STEPS = 0.01, 1e-3, 10, 2
ADV_WEIGHTS, SEG_AUX = (0.05, 0.2), 0.1   # larger than the release's, so the terms show
WD, MOMENTUM, BETAS = 5e-4, 0.9, (0.9, 0.99)
META = {'num_classes': NUM_CLASSES, 'class_names': ('a', 'b', 'c'), 'ignore_label': 255,
        'palette': np.zeros((NUM_CLASSES, 3), np.uint8)}


def config(torch_duplicates: bool = False, gan: str = 'bce'):
  from jaxseg.config_files import load_config  # pylint: disable=g-import-not-at-top
  c = load_config('configs/adaptsegnet.py:smoke')
  c.model.width = WIDTH
  c.discriminator.ndf = NDF
  c.loss.update(dict(adv_weights=ADV_WEIGHTS, seg_aux_weight=SEG_AUX, gan=gan))
  c.optimizer.update(dict(learning_rate=LR_G, weight_decay=WD, momentum=MOMENTUM, warmup_steps=0,
                          decay_steps=HORIZON, torch_duplicates=torch_duplicates))
  c.optimizer.param_groups.classifier.lr_mult = 10.0
  c.discriminator.optimizer.update(dict(learning_rate=LR_D, b1=BETAS[0], b2=BETAS[1],
                                        decay_steps=HORIZON))
  c.num_train_steps = HORIZON
  return c


def batches(seed: int = 0):
  """STEPS batches {'source': image, label; 'target': image} (NHWC float32, NHW int32)."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(STEPS):
    label = rng.integers(0, NUM_CLASSES, (1,) + SRC_HW).astype(np.int32)
    label[:, :5, :7] = 255
    out.append({'source': {'image': rng.normal(0, 1, (1,) + SRC_HW + (3,)).astype(np.float32),
                           'label': label},
                'target': {'image': rng.normal(0.3, 1.2, (1,) + TGT_HW + (3,)).astype(np.float32)}})
  return out


def numpy_tree(shapes, seed: int = 0):
  """Deterministic weights with the shapes of a params/batch_stats tree (leaf name decides):
  BN scale U(0.5, 1.5), bias / mean N(0, 0.2), var U(0.5, 2); ASPP kernels N(0, 0.05); other
  kernels He-normal; D layers U(+-1/sqrt(fan_in)); other biases N(0, 0.1)."""
  import jax  # pylint: disable=g-import-not-at-top
  flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
  treedef = jax.tree_util.tree_structure(shapes)
  shape_of = {tuple(str(getattr(p, 'key', p)) for p in path): tuple(s.shape) for path, s in flat}
  leaves = []
  for i, (path, s) in enumerate(flat):
    keys = [str(getattr(p, 'key', p)) for p in path]
    rng = np.random.default_rng([seed, i])
    name, shape = keys[-1], tuple(s.shape)
    if 'discriminator' in keys:
      fan_in = 16 * shape_of[tuple(keys[:-1]) + ('kernel',)][2]
      b = 1 / np.sqrt(fan_in)
      v = rng.uniform(-b, b, shape)
    elif name == 'scale':
      v = rng.uniform(0.5, 1.5, shape)
    elif name == 'var':
      v = rng.uniform(0.5, 2.0, shape)
    elif name in ('mean',) or (name == 'bias' and any(k.startswith('bn') or k == 'downsample_bn'
                                                       for k in keys)):
      v = rng.normal(0, 0.2, shape)
    elif name == 'kernel' and any(k.startswith('aspp') for k in keys):
      v = rng.normal(0, 0.05, shape)
    elif name == 'kernel':
      v = rng.normal(0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
    else:
      v = rng.normal(0, 0.1, shape)
    leaves.append(np.asarray(v, np.float32))
  return jax.tree_util.tree_unflatten(treedef, leaves)


def d_input() -> np.ndarray:
  """(2, 37, 45, K) float64 softmax maps, the discriminator forward case."""
  x = np.random.default_rng(5).normal(size=(2, 37, 45, NUM_CLASSES))
  return np.exp(x) / np.exp(x).sum(-1, keepdims=True)


def flat(tree, prefix: str = '') -> dict:
  """Nested dict -> {'a/b/c': np.ndarray}."""
  out = {}
  for k, v in tree.items():
    key = f'{prefix}/{k}' if prefix else str(k)
    if isinstance(v, dict) or hasattr(v, 'items'):
      out.update(flat(v, key))
    else:
      out[key] = np.asarray(v)
  return out


def summary(arrays: dict, seed: int = 1) -> dict:
  """Per array: [L2 norm, two projections on fixed unit vectors scaled by sqrt(n)] (float64)."""
  out = {}
  for i, key in enumerate(sorted(arrays)):
    a = np.asarray(arrays[key], np.float64).ravel()
    w = np.random.default_rng([seed, i]).normal(size=(2, a.size))
    w *= np.sqrt(a.size) / np.linalg.norm(w, axis=1, keepdims=True)
    out[key] = np.concatenate([[np.linalg.norm(a)], w @ a])
  return out


# ------------------------------------------------------------------------------ PyTorch side


def torch_discriminator(num_classes: int, ndf: int):
  """The reference FCDiscriminator (written from the spec's table, §2), float64."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  class FCDiscriminator(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(num_classes, ndf, 4, stride=2, padding=1)
      self.conv2 = nn.Conv2d(ndf, ndf * 2, 4, stride=2, padding=1)
      self.conv3 = nn.Conv2d(ndf * 2, ndf * 4, 4, stride=2, padding=1)
      self.conv4 = nn.Conv2d(ndf * 4, ndf * 8, 4, stride=2, padding=1)
      self.classifier = nn.Conv2d(ndf * 8, 1, 4, stride=2, padding=1)
      self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
      for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
        x = self.act(conv(x))
      return self.classifier(x)

  return FCDiscriminator().to(torch.float64)


def _load_torch(module, params: dict, batch_stats: dict, layout: str = 'adaptsegnet_multi'):
  """Copies JAX arrays (flat 'params/...' via the converter's key map) into a torch module."""
  import torch  # pylint: disable=g-import-not-at-top
  from jaxseg.convert.layouts import convert_flat  # pylint: disable=g-import-not-at-top
  merged = {**{f'params/{k}': v for k, v in params.items()},
            **{f'batch_stats/{k}': v for k, v in batch_stats.items()}}
  with torch.no_grad():
    for key, tensor in module.state_dict().items():
      if key.endswith('num_batches_tracked'):
        continue
      (flax_key, converted), = convert_flat({key: tensor.numpy()}, layout)[0].items()
      value = merged[flax_key]
      if value.ndim == 4:
        value = np.transpose(value, (3, 2, 0, 1))
      assert value.shape == tuple(tensor.shape), (key, value.shape, tensor.shape)
      tensor.copy_(torch.from_numpy(np.asarray(value, np.float64)))


def torch_d_load(d, params: dict):
  """JAX FCDiscriminator params {layer/kernel|bias} -> torch module d."""
  import torch  # pylint: disable=g-import-not-at-top
  with torch.no_grad():
    for name in ('conv1', 'conv2', 'conv3', 'conv4', 'classifier'):
      getattr(d, name).weight.copy_(torch.from_numpy(
          np.transpose(params[f'{name}/kernel'], (3, 2, 0, 1)).astype(np.float64)))
      getattr(d, name).bias.copy_(torch.from_numpy(params[f'{name}/bias'].astype(np.float64)))


def release_sgd_params(model):
  """The release's 1x list: modules() of conv1, bn1, layer1-4, then each one's parameters()
  (duplicates included), requires_grad only (spec §8.1)."""
  for part in (model.conv1, model.bn1, model.layer1, model.layer2, model.layer3, model.layer4):
    for module in part.modules():
      for p in module.parameters():
        if p.requires_grad:
          yield p


def torch_reenact(g_params: dict, g_stats: dict, d_params: dict, steps, torch_duplicates=False,
                  gan='bce'):
  """STEPS iterations of the release in float64 -> {'losses': (STEPS, 6), 'params', 'stats'}.

  Losses per step: seg2, seg1, adv1, adv2, d1, d2 (d = source half + target half).
  """
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  from jaxseg.bench.torch_resnet import TorchDeepLabV2  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  g = TorchDeepLabV2(NUM_CLASSES, blocks=(1, 1, 1, 1), width=WIDTH, multi_level=True,
                     aspp_branches=2).to(torch.float64)
  _load_torch(g, g_params, g_stats)
  ds = {lvl: torch_discriminator(NUM_CLASSES, NDF) for lvl in ('level1', 'level2')}
  for lvl, d in ds.items():
    torch_d_load(d, {k.split('/', 1)[1]: v for k, v in d_params.items() if k.startswith(lvl)})
  g.train()
  for m in g.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
      m.weight.requires_grad_(False)
      m.bias.requires_grad_(False)
  heads = list(g.layer5.parameters()) + list(g.layer6.parameters())
  backbone = (list(release_sgd_params(g)) if torch_duplicates else
              [p for p in g.parameters() if p.requires_grad and
               all(p is not h for h in heads)])
  opt_g = torch.optim.SGD([{'params': backbone, 'lr': LR_G}, {'params': heads, 'lr': 10 * LR_G}],
                          lr=LR_G, momentum=MOMENTUM, weight_decay=WD)
  opt_d = {lvl: torch.optim.Adam(d.parameters(), lr=LR_D, betas=BETAS) for lvl, d in ds.items()}
  crit = (torch.nn.BCEWithLogitsLoss() if gan == 'bce' else torch.nn.MSELoss())
  ce = torch.nn.CrossEntropyLoss(ignore_index=255)
  up = lambda x, hw: F.interpolate(x, size=hw, mode='bilinear', align_corners=True)
  nchw = lambda a: torch.from_numpy(np.transpose(a, (0, 3, 1, 2)).astype(np.float64))
  losses = []
  for it, batch in enumerate(steps):
    factor = (1 - it / HORIZON) ** 0.9
    opt_g.param_groups[0]['lr'], opt_g.param_groups[1]['lr'] = LR_G * factor, 10 * LR_G * factor
    for o in opt_d.values():
      o.param_groups[0]['lr'] = LR_D * factor
    opt_g.zero_grad()
    for o in opt_d.values():
      o.zero_grad()
    for d in ds.values():
      for p in d.parameters():
        p.requires_grad_(False)
    out = g(nchw(batch['source']['image']))
    label = torch.from_numpy(batch['source']['label'].astype(np.int64))
    p1, p2 = up(out['aux_logits'], SRC_HW), up(out['logits'], SRC_HW)
    seg2, seg1 = ce(p2, label), ce(p1, label)
    (seg2 + SEG_AUX * seg1).backward()
    out_t = g(nchw(batch['target']['image']))
    t1, t2 = up(out_t['aux_logits'], TGT_HW), up(out_t['logits'], TGT_HW)
    d1_t, d2_t = ds['level1'](F.softmax(t1, dim=1)), ds['level2'](F.softmax(t2, dim=1))
    adv1 = crit(d1_t, torch.zeros_like(d1_t))
    adv2 = crit(d2_t, torch.zeros_like(d2_t))
    (ADV_WEIGHTS[0] * adv1 + ADV_WEIGHTS[1] * adv2).backward()
    for d in ds.values():
      for p in d.parameters():
        p.requires_grad_(True)
    d_loss = {}
    for lvl, ps, pt in (('level1', p1, t1), ('level2', p2, t2)):
      o_s = ds[lvl](F.softmax(ps.detach(), dim=1))
      l_s = crit(o_s, torch.zeros_like(o_s)) / 2
      l_s.backward()
      o_t = ds[lvl](F.softmax(pt.detach(), dim=1))
      l_t = crit(o_t, torch.ones_like(o_t)) / 2
      l_t.backward()
      d_loss[lvl] = float((l_s + l_t).detach())
    opt_g.step()
    for o in opt_d.values():
      o.step()
    losses.append([float(t.detach()) for t in (seg2, seg1, adv1, adv2)]
                  + [d_loss['level1'], d_loss['level2']])
  params, stats = {}, {}
  from jaxseg.convert.layouts import convert_flat  # pylint: disable=g-import-not-at-top
  sd = {k: v.detach().numpy() for k, v in g.state_dict().items()}
  for key, value in convert_flat(sd, 'adaptsegnet_multi')[0].items():
    collection, rest = key.split('/', 1)
    (params if collection == 'params' else stats)[f'generator/{rest}'] = value
  for lvl, d in ds.items():
    for name in ('conv1', 'conv2', 'conv3', 'conv4', 'classifier'):
      conv = getattr(d, name)
      params[f'discriminator/{lvl}/{name}/kernel'] = np.transpose(
          conv.weight.detach().numpy(), (2, 3, 1, 0))
      params[f'discriminator/{lvl}/{name}/bias'] = conv.bias.detach().numpy()
  return {'losses': np.asarray(losses), 'params': params, 'stats': stats}


# ------------------------------------------------------------------------------ both sides


def method(torch_duplicates: bool = False, gan: str = 'bce'):
  from jaxseg.methods.adaptsegnet.method import AdaptSegNetMethod  # pylint: disable=g-import-not-at-top
  return AdaptSegNetMethod(config(torch_duplicates, gan), META)


def initial_state(m=None):
  """TrainState of the case: the method's structure, `numpy_tree` values."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxseg.training.state import TrainState  # pylint: disable=g-import-not-at-top
  m = m or method()
  example = {'image': np.zeros((1,) + TGT_HW + (3,), np.float32)}
  shapes = jax.eval_shape(m.init_state, jax.random.PRNGKey(0), example)
  params = jax.tree.map(jnp.asarray, numpy_tree(shapes.params, seed=0))
  stats = jax.tree.map(jnp.asarray, numpy_tree(shapes.batch_stats, seed=1))
  return TrainState.create(params, stats, m._ensure_tx(params), jax.random.PRNGKey(0))  # pylint: disable=protected-access


def reference(torch_duplicates: bool = False, gan: str = 'bce'):
  """The PyTorch re-enactment from the case's initial state -> losses, updates, stats."""
  s0 = initial_state()
  params0 = flat(s0.params)
  g = {k.split('/', 1)[1]: v for k, v in params0.items() if k.startswith('generator/')}
  d = {k.split('/', 1)[1]: v for k, v in params0.items() if k.startswith('discriminator/')}
  stats = {k.split('/', 1)[1]: v for k, v in flat(s0.batch_stats).items()}
  ref = torch_reenact(g, stats, d, batches(), torch_duplicates, gan)
  updates = {k: ref['params'][k] - params0[k].astype(np.float64) for k in params0}
  return {'losses': ref['losses'], 'updates': updates, 'stats': ref['stats']}


def jax_run(torch_duplicates: bool = False, gan: str = 'bce'):
  """STEPS jitted train steps from the case's initial state -> losses, updates, stats."""
  import jax  # pylint: disable=g-import-not-at-top
  m = method(torch_duplicates, gan)
  state = initial_state(m)
  params0 = flat(state.params)
  step = jax.jit(m.train_step)
  losses = []
  for batch in batches():
    state, metrics = step(state, batch)
    losses.append([float(metrics[k]) for k in ('seg/level2', 'seg/level1', 'adv/level1',
                                                'adv/level2', 'd/level1', 'd/level2')])
  params = flat(jax.device_get(state.params))
  updates = {k: params[k].astype(np.float64) - params0[k].astype(np.float64) for k in params0}
  stats = flat(jax.device_get(state.batch_stats))
  return {'losses': np.asarray(losses), 'updates': updates, 'stats': stats}
