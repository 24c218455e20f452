"""CTKT: depth super-resolution with cross-task knowledge transfer (DSRNet + DENet + SPNet).

  python -m jaxseg.main --config=configs/ctkt.py --workdir=runs/ctkt

Sun et al., CVPR 2021 (ctkt_dsr.md). DSRNet (D-DBPN on the LR depth) is trained together with
DENet (RGB -> depth), output-space (L_P) and affinity-space (L_A) distillation with a dynamic
teacher, and SPNet (structure prediction from both networks' last features, L_S); only DSRNet
runs at evaluation / prediction (depth alone, no RGB). jaxseg.methods.ctkt.method has the loss.

Variants after ':', comma-separated and combinable (`configs/ctkt.py:middlebury,x8`,
`configs/ctkt.py:smoke,dsr_only`, `configs/ctkt.py:steps=500,seed=1`); at most one dataset,
one scale and one ablation:
  (none)      the embedded synthetic scenes (RGB + metric depth) under the NYU protocol at x4,
              sized for ~2-3 min on a 2-core CPU (see below).
  smoke       toy size (2 units / blocks, 8 features, 16x16 HR patches, 3 steps): < 1 minute.
  nyuv2       NYU v2, DKN/FDSR split (first 1000 frames train, last 449 test): per-image min-max
              normalisation, PIL bicubic, RMSE in cm after de-normalising, 6-pixel border crop
              (ctkt_dsr.md §8.1). Needs --config.dataset.data_dir=<NYUv2 root>.
  middlebury  Middlebury 2005/2006 FullSize, the group's protocol (§8.2): OpenCV bicubic, the
              8-bit disparity scale, no border crop; test scenes Art, Books, Dolls, Laundry,
              Moebius, Reindeer held out, every other scene trains.
  sintel_middlebury  the group's training set (§8.2, MSG-Net's): 58 Sintel + 34 Middlebury
              images, 82 train / 10 val (the listed frame indices), jaxseg.data.sources
              'sintel_middlebury'; needs dataset.sintel_dir and dataset.middlebury_dir.
  sintel      MPI Sintel depth (training frames; `holdout` scenes are the val split), min-max
              normalised over valid pixels, errors on the normalised map x 255 [D].
  tofmark     ToFMark (Books, Devil, Shark): EVALUATION ONLY (num_train_steps=0; the dataset's
              own LR ToF map is the input, RMSE / MAD in mm): --mode=eval --workdir=<a run
              trained with the same model fields> or --config.init_from=<weights>.
  x2, x4, x8, x16   the scale (projection kernel / stride / padding: dsrnet.PROJECTION).
Ablations (the paper's table rows):
  dsr_only       DSRNet alone, supervised by L1 (ctkt.denet=False; no RGB read at all)
  lp_only        + DENet and L_P with the dynamic teacher (no L_A, no SPNet)
  no_spnet       + L_P + L_A with the dynamic teacher (no SPNet)
  (default)      + SPNet: the full method
  fixed_teacher  the full method with a fixed teacher (DENet teaches DSRNet every step [D]:
                 the paper's "fixed" direction is unknown; ctkt.teacher='dsr' is the other)
Keys: steps=<int> (num_train_steps), seed=<int>, teacher=dynamic|dsr|de,
granularity=batch|sample|block, pool=<int> (affinity pooling).
Override any field with --config.<field>=<value>.

What the default (synthetic) run changes from the paper setting (a 2-core CPU run): T = N = 3
units / blocks of 32 features and a 64-channel first conv (D-DBPN T=7, 64 / 256); 32x32 HR
patches (8x8 LR) from 64x64 renders, batch 8, 150 steps at Adam 1e-3 with /10 at 80 % of the
steps (~1 s/step for the full method, 0.4 s for dsr_only on the shared CPU), affinities on
16x16 pooled features (PMBANet: 1e-4, /10 at epochs 99 and 199 of 240); DSRNet's residual (bicubic) path on
(converges faster in short runs; DBPN's training script main.py has no --residual at all and
its eval.py adds the bicubic only when --residual is passed, default False, so the dataset
variants keep residual=False, D-DBPN as trained); evaluation on 50 64x64 renders.

Fields marked [D] are recommendations where the CTKT paper's value is unknown (ctkt_dsr.md tags
[D] / [review] / Recommendation); [V] ones are verified in DBPN / the group's code.
"""
import ml_collections

from jaxseg import configlib

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # DENet's RGB input normalisation
IMAGENET_STD = (58.395, 57.12, 57.375)

DATASETS = ('nyuv2', 'middlebury', 'sintel_middlebury', 'sintel', 'tofmark')
SCALES = {'x2': 2, 'x4': 4, 'x8': 8, 'x16': 16}
ABLATIONS = {
    'dsr_only': dict(denet=False, spnet=False),
    'lp_only': dict(lambda_a=0.0, spnet=False),
    'no_spnet': dict(spnet=False),
    'fixed_teacher': dict(teacher='de'),
}
KEYS = {'steps': int, 'seed': int, 'teacher': str, 'granularity': str, 'pool': int}
# [D] Sintel validation scenes (MSG-Net's 10 validation frames are indices into its mixed set,
# which is not published): one scene of each of four families.
SINTEL_HOLDOUT = ('alley_2', 'bamboo_2', 'market_5', 'temple_3')


def get_config(arg=None):
  flags, keys = configlib.parse_variants(arg, DATASETS + tuple(SCALES) + tuple(ABLATIONS)
                                         + ('smoke',), KEYS, 'configs/ctkt.py')
  datasets = [f for f in flags if f in DATASETS]
  scales = [SCALES[f] for f in flags if f in SCALES]
  ablations = [f for f in flags if f in ABLATIONS]
  if len(datasets) > 1 or len(scales) > 1 or len(ablations) > 1:
    raise configlib.ConfigError(f'configs/ctkt.py: at most one dataset, one scale and one '
                                f'ablation, got {flags}')
  dataset = datasets[0] if datasets else 'synthetic'
  scale = scales[0] if scales else 4

  c = configlib.trainer(
      'ctkt', batch_size=8, eval_batch_size=10, num_train_steps=150, log_every_steps=25,
      eval_every_steps=0, checkpoint_every_steps=150, keep_checkpoints=2, init_layout='plain')
  c.dataset = ml_collections.ConfigDict(dict(
      name='synthetic', seed=0, num_train=4000, num_val=50, image_size=(64, 64),
      domain='source', augment=_augment(crop=32, scale=scale, protocol='nyu')))

  c.model = ml_collections.ConfigDict(dict(
      name='dbpn',
      num_stages=3,   # T up-projections (T - 1 down); D-DBPN 7 [V]; N = T blocks for CTKT [D]
      features=32,    # projection feature maps; DBPN 64 [V]
      feat0=64,       # first 3x3 conv; DBPN 256 [V]
      dense=True,     # D-DBPN concatenation + 1x1 bottlenecks [V]; False = plain chain
      residual=True,  # DBPN --residual (module docstring); False for the dataset variants
      lr_up='pipeline',  # bicubic input from the pipeline (exact protocol) | 'jax' (in the step)
      input_scale=1.0,  # values / input_scale into the networks (255: 8-bit maps)
      conv_impl='xla', dtype='float32'))

  c.ctkt = ml_collections.ConfigDict(dict(
      denet=True,          # False: DSRNet alone (the dsr_only baseline)
      spnet=True,          # SPNet + L_S (needs dataset.augment.structure_gt)
      denet_features=32,   # DENet width (paper unknown; = DSRNet's features [D])
      lambda_p=1.0,        # [D] lambda values unknown (ctkt_dsr.md §6): sweep
      lambda_a=1.0,        # [D]
      lambda_s=0.1,        # [D]
      teacher='dynamic',   # dynamic | dsr | de (fixed) [review]
      teacher_granularity='batch',  # batch (default [D]) | sample | block
      # features average-pooled to <= pool x pool before A [D]; the spec's bound is 32, the
      # synthetic default uses 16 (measured 4.5 vs 1.05 s/step on the shared 2-core CPU)
      affinity_pool=16,
      affinity_norm='l1',  # l1 | l2 (mean) [D]
      de_alpha=0.85,       # L_DE = alpha (1 - SSIM) / 2 + (1 - alpha) L1 (Monodepth) [D]
      ssim_filter_size=7, ssim_sigma=1.5,  # dm-pix Gaussian SSIM window (7: small patches) [D]
      ssim_max_val=1.0,    # the dynamic range of the network-space depth
      spnet_width=32, spnet_depth=3))  # structure CNN [D]

  c.loss = ml_collections.ConfigDict(dict(kind='l1'))  # L_DSR = L1 (ctkt_dsr.md §6)
  c.evaluation = ml_collections.ConfigDict(dict(
      denormalize=True,   # undo the per-image min-max ('nyu' protocol) before measuring
      units_scale=100.0,  # metres -> cm (NYU protocol)
      units='cm',
      border=6))          # pixels cropped on each side (NYU protocol a[6:-6, 6:-6])
  # PMBANet (the group's code, ctkt_dsr.md §7): Adam 1e-4, /10 steps ('step' schedule).
  c.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8,
      schedule='step', boundaries=(120,), decay_factor=0.1, warmup_steps=0,
      # one optimizer over {'dsr', 'de', 'sp'}; lr_mult per network (multi_transform)
      param_groups=dict(de=dict(pattern='^de/', lr_mult=1.0, optional=True),
                        sp=dict(pattern='^sp/', lr_mult=1.0, optional=True))))

  if dataset != 'synthetic':
    _real_dataset(c, dataset, scale)
  if 'smoke' in flags:
    _smoke(c, scale)
  for name in ablations:
    c.ctkt.update(ABLATIONS[name])
    if not c.ctkt.spnet:
      c.dataset.augment.structure_gt = ''  # no SPNet: no structure target to compute
  if 'steps' in keys:
    _set_steps(c, keys['steps'])
  for key, field in (('seed', 'seed'), ('teacher', 'ctkt.teacher'),
                     ('granularity', 'ctkt.teacher_granularity'), ('pool', 'ctkt.affinity_pool')):
    if key in keys:
      configlib.set_field(c, field, keys[key])
  return c


def _set_steps(c, steps: int):
  """num_train_steps with the /10 step at the same fraction (80 %) and a final checkpoint."""
  c.num_train_steps = steps
  c.checkpoint_every_steps = max(steps, 1)
  c.optimizer.boundaries = (int(0.8 * steps),) if steps > 1 else ()


def _augment(crop: int, scale: int, protocol: str, key: str = 'depth') -> dict:
  """The 'dsr' recipe (jaxseg.data.recipes): PMBANet's h / v flips and transpose [V]."""
  return dict(recipe='dsr', crop_size=(crop, crop), dsr_scale=scale, dsr_protocol=protocol,
              dsr_key=key, flip=True, vflip=True, transpose=True, mean=IMAGENET_MEAN,
              std=IMAGENET_STD, bgr=False,
              # SPNet's target: edges of the HR depth [D] (the group's edge labels are Canny of
              # the HR depth, threshold 0.08 of the largest gradient, [V, sibling code]).
              structure_gt='canny', structure_low=0.04, structure_high=0.08,
              structure_sigma=1.0)


def _paper_model(c):
  """D-DBPN as in DBPN [V]: T=7, 64 features, 256-channel first conv, dense, no residual."""
  c.model.update(num_stages=7, features=64, feat0=256, dense=True, residual=False)


def _paper_schedule(c, steps: int):
  """PMBANet [V, sibling code]: Adam 1e-4, betas (0.9, 0.999), eps 1e-8, batch 8, lr /10 at
  epochs 99 and 199 of 240 (the same fractions of `steps`)."""
  c.batch_size = 8
  c.num_train_steps = steps
  c.log_every_steps = 100
  c.eval_every_steps = 5000
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.optimizer.update(learning_rate=1e-4, warmup_steps=0, schedule='step',
                     boundaries=(steps * 99 // 240, steps * 199 // 240), decay_factor=0.1)


def _real_dataset(c, name: str, scale: int):
  _paper_model(c)
  c.ctkt.update(denet_features=64, affinity_pool=32)
  c.eval_batch_size = 1  # whole maps (Middlebury / ToFMark sizes differ between scenes)
  c.predict.num_examples = 6
  if name == 'nyuv2':
    # 30000 steps = 240 epochs of 1000 frames at batch 8 (PMBANet's epochs, §7). Crop 256 (the
    # 'dsr' preset; DCTNet's NYU crops [V]); PMBANet's 32 LR px x scale would not fit x16.
    _paper_schedule(c, 30000)
    c.dataset = ml_collections.ConfigDict(dict(
        name='nyuv2_dsr', seed=0, data_dir='', prepared_dir='',
        augment=_augment(crop=256, scale=scale, protocol='nyu')))
    c.evaluation.update(denormalize=True, units_scale=100.0, units='cm', border=6)
  elif name == 'middlebury':
    # Training crop: PMBANet's LR patch 32 -> HR 32 * scale (§7) [V, sibling code].
    _paper_schedule(c, 20000)  # [D]: the group's epochs are over a different (mixed) set
    c.dataset = ml_collections.ConfigDict(dict(
        name='middlebury', seed=0, data_dir='', prepared_dir='',
        holdout=('Art', 'Books', 'Dolls', 'Laundry', 'Moebius', 'Reindeer'),
        augment=_augment(crop=32 * scale, scale=scale, protocol='middlebury', key='disparity')))
    c.model.input_scale = 255.0  # 8-bit scale -> ~[0, 1] (PMBANet reads 8-bit maps) [D]
    c.evaluation.update(denormalize=False, units_scale=1.0, units='disparity px (0-255 scale)',
                        border=0)
  elif name == 'sintel_middlebury':
    # MSG-Net's mixed set (§8.2): Sintel depth and Middlebury depth, both min-max normalised
    # over their valid pixels ('nyu' protocol, PIL bicubic) [D: the group's exact conversion of
    # the two to 8-bit maps is not published]; errors on the normalised map x 255.
    _paper_schedule(c, 20000)  # [D]
    c.dataset = ml_collections.ConfigDict(dict(
        name='sintel_middlebury', seed=0, sintel_dir='', middlebury_dir='', prepared_dir='',
        image_pass='clean', num_sintel=58, num_middlebury=34,
        val_frames=(1, 20, 28, 58, 64, 66, 69, 73, 75, 79),
        augment=_augment(crop=min(32 * scale, 256), scale=scale, protocol='nyu')))
    c.evaluation.update(denormalize=False, units_scale=255.0,
                        units='normalised depth x 255 (0-255 scale)', border=0)
  elif name == 'sintel':
    # Frames are 436 x 1024: HR patch 32 * scale capped at 256 (x16 would need 512) [D].
    _paper_schedule(c, 20000)  # [D]
    c.dataset = ml_collections.ConfigDict(dict(
        name='sintel', seed=0, data_dir='', prepared_dir='', image_pass='clean',
        holdout=SINTEL_HOLDOUT,
        augment=_augment(crop=min(32 * scale, 256), scale=scale, protocol='nyu')))
    c.evaluation.update(denormalize=False, units_scale=255.0,
                        units='normalised depth x 255 (0-255 scale)', border=0)
  elif name == 'tofmark':
    # Evaluation only. The loop builds a training source too; with num_train_steps=0 it is
    # never read, so the test scenes stand in for it (splits.train='test').
    c.num_train_steps = 0
    c.eval_every_steps = 0
    c.checkpoint_every_steps = 1
    c.dataset = ml_collections.ConfigDict(dict(
        name='tofmark', seed=0, data_dir='', prepared_dir='', reader='png16_mm',
        splits=dict(train='test'),
        augment=_augment(crop=32 * scale, scale=scale, protocol='middlebury')))
    c.model.lr_up = 'jax'  # the ToF map is not an exact 1/s of the target; no depth_lr_up
    c.optimizer.update(learning_rate=1e-4, schedule='constant', warmup_steps=0, boundaries=())
    c.evaluation.update(denormalize=False, units_scale=1000.0, units='mm', border=0)  # [R]
    c.predict.num_examples = 3


def _smoke(c, scale: int):
  """Toy sizes: train + eval + predict in about a minute on CPU."""
  c.batch_size = 2
  c.eval_batch_size = 2
  c.num_train_steps = 3
  c.log_every_steps = 1
  c.eval_every_steps = 0
  c.checkpoint_every_steps = 3
  c.model.update(num_stages=2, features=8, feat0=8)
  c.ctkt.update(denet_features=8, spnet_width=8, spnet_depth=1, affinity_pool=8,
                ssim_filter_size=min(7, 2 * scale))
  c.optimizer.update(warmup_steps=0, boundaries=(2,))
  c.predict.num_examples = 2
  if c.dataset.name == 'synthetic':
    size = 4 * scale  # LR maps of 4x4 pixels
    c.dataset.update(num_train=8, num_val=2, image_size=(size, size))
    c.dataset.augment.crop_size = (size, size)
    c.evaluation.border = min(c.evaluation.border, scale // 2)
