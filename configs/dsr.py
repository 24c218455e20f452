"""Depth super-resolution with DSRNet (depth-only D-DBPN): CTKT's DSR branch, supervised alone.

  python -m jaxseg.main --config=configs/dsr.py --workdir=runs/dsr

Variants after ':', comma-separated and combinable (`configs/dsr.py:middlebury,x8`,
`configs/dsr.py:smoke,x2`); at most one dataset and one scale:
  (none)      the embedded synthetic scenes' depth (metres) under the NYU protocol at x4, sized
              to train in ~10-15 minutes on a 2-core CPU (see below).
  smoke       the same at toy size (2 units, 8 features, 16x16 patches, 3 steps): a 1-minute check.
  nyuv2_dsr   NYU v2, DKN/FDSR split (first 1000 frames train, last 449 test): per-image min-max
              normalisation, PIL bicubic, RMSE in cm after de-normalising, 6-pixel border crop
              (ctkt_dsr.md §8.1). Needs --config.dataset.data_dir=<NYUv2 root>.
  middlebury  Middlebury 2005/2006 FullSize, the group's protocol (§8.2): OpenCV bicubic, the
              8-bit disparity scale ('disparity' = stored value + dmin: the same pixel units, so
              the errors are on the 0-255 scale), no border crop; test scenes Art, Books, Dolls,
              Laundry, Moebius, Reindeer held out, every other scene in data_dir trains. The
              group trains on MSG-Net's mixed 58 Sintel + 34 Middlebury set, which one jaxseg
              source cannot express: scores are not comparable to the papers' as is.
  sintel      MPI Sintel depth (training frames; `holdout` scenes are the val split). Uncertain
              (not in the sources): how the group turned Sintel depth into its 8-bit maps. Here:
              per-image min-max normalisation ('nyu' protocol, hence PIL bicubic rather than
              OpenCV), errors on that normalised map times 255.
  tofmark     ToFMark (Books, Devil, Shark): an EVALUATION-ONLY set (3 scenes, no training
              split): num_train_steps=0, the dataset's own low-resolution ToF map is the input
              (up-sampled in the step: its size is not an exact 1/s of the ground truth, so the
              prediction is resized bilinearly to it), RMSE / MAD in mm. Evaluate a trained run:
              --mode=eval --workdir=<run trained with the same model fields>, or train mode with
              --config.init_from=<weights>. The ToF input is metric depth (metres, ~0.4-1 m),
              fed as is (no min-max normalisation): a network trained on normalised NYU maps
              sees a similar but not identical value range.
  x2, x4, x8, x16   the scale (config.dataset.augment.dsr_scale; projection kernel / stride /
              padding from the table in jaxseg.methods.ctkt.dsrnet.PROJECTION). Default x4.
Override any field with --config.<field>=<value>, e.g. --config.model.residual=True (add the
bicubic input, DBPN --residual) or --config.model.dense=False (plain DBPN chain).

What the default (synthetic) run changes from the paper setting, and why (a 2-core CPU run):
T=3 projection units of 32 features and a 64-channel first conv instead of D-DBPN's T=7, 64 /
256; 48x48 HR patches (12x12 LR) from 64x64 renders, batch 8 and 1000 steps at Adam 1e-3 (poly,
20 warm-up steps) instead of PMBANet's 128-256 px patches, 1e-4 and 240 epochs; the residual
(bicubic) path on, which converges faster in a short run; evaluation on 50 64x64 renders.
Everything else (D-DBPN structure, PReLU 0.25, Kaiming init, L1 loss, min-max normalisation, PIL
bicubic LR, RMSE in cm after de-normalising with the 6-pixel crop) is the NYU setting.

Fields marked [D] are recommendations where the CTKT paper's value is unknown (ctkt_dsr.md tags
[D] / [review] / Recommendation); [V] ones are verified in DBPN / the group's code.
"""
import ml_collections

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # the guide image (unused by DSRNet; CTKT's DENet)
IMAGENET_STD = (58.395, 57.12, 57.375)

DATASETS = ('nyuv2_dsr', 'middlebury', 'sintel', 'tofmark')
SCALES = {'x2': 2, 'x4': 4, 'x8': 8, 'x16': 16}
# [D] Sintel validation scenes (MSG-Net's 10 validation frames are indices into its mixed set,
# which is not published): one scene of each of four families.
SINTEL_HOLDOUT = ('alley_2', 'bamboo_2', 'market_5', 'temple_3')


def get_config(arg=None):
  flags = [a for a in (arg or '').split(',') if a]
  unknown = [f for f in flags if f not in DATASETS + tuple(SCALES) + ('smoke',)]
  if unknown:
    raise ValueError(f'configs/dsr.py: unknown variant(s) {unknown}; use smoke, one of '
                     f'{DATASETS} and one of {tuple(SCALES)}, comma-separated')
  datasets = [f for f in flags if f in DATASETS]
  scales = [SCALES[f] for f in flags if f in SCALES]
  if len(datasets) > 1 or len(scales) > 1:
    raise ValueError(f'configs/dsr.py: at most one dataset and one scale, got {flags}')
  dataset = datasets[0] if datasets else 'synthetic'
  scale = scales[0] if scales else 4

  c = ml_collections.ConfigDict()
  c.method = 'dsr'
  c.seed = 0
  c.batch_size = 8
  c.eval_batch_size = 10
  c.num_train_steps = 1000
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 2
  c.data_threads = 2
  c.num_devices = 0  # 0 = every device
  c.init_from = ''
  c.init_layout = 'plain'
  c.num_eval_examples = 0  # 0 = the whole validation split

  c.dataset = ml_collections.ConfigDict(dict(
      name='synthetic', seed=0, num_train=4000, num_val=50, image_size=(64, 64),
      domain='source',
      augment=_augment(crop=48, scale=scale, protocol='nyu')))

  c.model = ml_collections.ConfigDict(dict(
      name='dbpn',
      num_stages=3,   # T up-projections (T - 1 down); D-DBPN 7 [V]; N = T blocks for CTKT [D]
      features=32,    # projection feature maps; DBPN 64 [V]
      feat0=64,       # first 3x3 conv; DBPN 256 [V]
      dense=True,     # D-DBPN concatenation + 1x1 bottlenecks [V]; False = plain chain
      # DBPN --residual (add the bicubic input) [V option; DBPN's default False, CTKT's choice
      # unknown]. True for the short synthetic run (at 800 steps val RMSE 23.1 vs 25.1 cm
      # without), False for the dataset variants.
      residual=True,
      lr_up='pipeline',  # bicubic input from the pipeline (exact protocol) | 'jax' (in the step)
      input_scale=1.0,  # values / input_scale into the network (255: 8-bit maps)
      conv_impl='xla', dtype='float32'))

  c.loss = ml_collections.ConfigDict(dict(
      kind='l1'))  # L_DSR = L1 (ctkt_dsr.md §6); 'l2' for ablations

  c.evaluation = ml_collections.ConfigDict(dict(
      denormalize=True,   # undo the per-image min-max ('nyu' protocol) before measuring
      units_scale=100.0,  # metres -> cm (NYU protocol)
      units='cm',
      border=6))          # pixels cropped on each side (NYU protocol a[6:-6, 6:-6])

  # PMBANet (the group's code, ctkt_dsr.md §7) uses Adam 1e-4 with /10 steps at epochs 99, 199
  # of 240; jaxseg.training.optimizers has poly / constant schedules only, so poly stands in [D].
  c.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8,
      schedule='poly', power=0.9, warmup_steps=20, param_groups=()))
  c.predict = ml_collections.ConfigDict(dict(num_examples=4, input=''))  # input: folder or glob

  if dataset != 'synthetic':
    _real_dataset(c, dataset, scale)
  if 'smoke' in flags:
    _smoke(c, scale)
  return c


def _augment(crop: int, scale: int, protocol: str, key: str = 'depth') -> dict:
  """The 'dsr' recipe (jaxseg.data.recipes): PMBANet's h / v flips and transpose [V]."""
  return dict(recipe='dsr', crop_size=(crop, crop), dsr_scale=scale, dsr_protocol=protocol,
              dsr_key=key, flip=True, vflip=True, transpose=True, mean=IMAGENET_MEAN,
              std=IMAGENET_STD, bgr=False)


def _paper_model(c):
  """D-DBPN as in DBPN [V]: T=7, 64 features, 256-channel first conv, dense, no residual."""
  c.model.update(num_stages=7, features=64, feat0=256, dense=True, residual=False)


def _paper_schedule(c, steps: int):
  """PMBANet [V, sibling code]: Adam 1e-4, betas (0.9, 0.999), eps 1e-8, batch 8; poly [D]."""
  c.batch_size = 8
  c.num_train_steps = steps
  c.log_every_steps = 100
  c.eval_every_steps = 5000
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  c.optimizer.update(learning_rate=1e-4, warmup_steps=0)


def _real_dataset(c, name: str, scale: int):
  _paper_model(c)
  c.eval_batch_size = 1  # whole maps (Middlebury / ToFMark sizes differ between scenes)
  c.predict.num_examples = 6
  if name == 'nyuv2_dsr':
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
    c.optimizer.update(learning_rate=1e-4, schedule='constant', warmup_steps=0)
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
  c.optimizer.warmup_steps = 0
  c.predict.num_examples = 2
  if c.dataset.name == 'synthetic':
    size = 4 * scale  # LR maps of 4x4 pixels
    c.dataset.update(num_train=8, num_val=2, image_size=(size, size))
    c.dataset.augment.crop_size = (size, size)
    c.evaluation.border = min(c.evaluation.border, scale // 2)
