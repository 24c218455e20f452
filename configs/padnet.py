"""PAD-Net: multi-task depth + scene parsing with multi-modal distillation (module C).

  python -m jaxseg.main --config=configs/padnet.py --workdir=runs/padnet

Variants after ':', comma-separated and combinable (`configs/padnet.py:smoke,C`,
`configs/padnet.py:nyuv2,single_depth`):
  (none)      the embedded synthetic scenes (7 classes, depth, normals, contours), sized to train
              in under an hour on a 2-core CPU (measured: 47 min at load ~6, 0.7 s/step; val
              mIoU 45.7, RMSE 0.78 m; see below for what differs from the paper).
  smoke       the same at toy size (ResNet depth 14, width 8, N=16, 48x48): a 1-minute check.
  nyuv2       the paper's NYUD-v2 setting: ResNet-50, 40 classes, 795 train / 654 test, N=512,
              Eigen crop and 1e-3..10 m depth range in evaluation; the unknown training recipe
              is MTL-PyTorch's (Adam 1e-4, wd 1e-4, poly 0.9, batch 8, full 480x640 frames).
              Needs --config.dataset.data_dir=<NYUv2 root> and ImageNet weights via
              --config.init_from=resnet50.pth (layout torchvision_resnet).
  cityscapes  the paper's Cityscapes setting: ResNet-101, 19 classes; the `cityscapes`
              source with depth from disparity (dataset.depth=True). Cityscapes ships no normals
              or contours: they are derived from disparity + camera and from the labels
              (jaxseg.data.derived, as for NYUv2), so the multi-task model trains. Each task is
              masked by its own validity (sky and stereo holes still train parsing).
Ablations (padnet.md §1.3), one flag each, combinable with the variants above:
  single_depth    front-end + depth branch + decoder only (model.tasks='depth')
  single_parsing  front-end + parsing branch + decoder only (model.tasks='parsing')
  multitask       direct multi-task, no intermediate tasks, no distillation
                  (model.tasks='depth_parsing', the paper's "front-end + DE + SP")
  none            all four intermediate tasks (deep supervision), no distillation
  A, B, C         distillation module A (concatenation), B (message passing), C (attention-
                  guided; the default). --config.model.distillation=B does the same as `:B`.
Override any field with --config.<field>=<value>, e.g. --config.model.gate_source=source
(MTL-PyTorch's module C) or --config.loss.weights.inter_normals=10.

What the default (synthetic) run changes from the paper, and why: ResNet-50 at width 32 (half
the channels; --config.model.width=64 restores it), N=64 instead of 512 and 32 aggregation
channels, 80x80 renders, batch 4 and 2000 steps, so that a 2-core CPU run takes ~20-30 min
(measured: a step costs ~0.4x a default DeepLab v2 step; N=128 at 96x96 costs 2x, mostly in the
transposed convolutions); no pretrained front-end (none exists for these scenes), so Adam at
1e-3 with warm-up instead of MTL-PyTorch's 1e-4; flips only (PAD-Net's zoom with depth / factor
is --config.dataset.augment.recipe=zoom). The architecture (aggregated OS-8 front-end, four
deconv branches at 1/4, prediction-based distillation with the target-task gate, two-deconv
decoders) and the loss (L1-L6, Euclidean depth / normals, balanced contour BCE, weights 1 / 0.8)
are the paper's.
Fields marked "uncertain" come from padnet.md facts that are not verified against the paper.
"""
import ml_collections

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255 (torchvision ResNet init)
IMAGENET_STD = (58.395, 57.12, 57.375)

# L1..L6 weights. Uncertain (padnet.md §1.1 [N], unverified): finals 1, intermediates 0.8.
PAPER_LOSS_WEIGHTS = dict(depth=1.0, parsing=1.0, inter_depth=0.8, inter_normals=0.8,
                          inter_contours=0.8, inter_parsing=0.8)

ABLATIONS = {
    'single_depth': dict(tasks='depth'),
    'single_parsing': dict(tasks='parsing'),
    'multitask': dict(tasks='depth_parsing'),
    'none': dict(tasks='multitask', distillation='none'),
    'A': dict(tasks='multitask', distillation='A'),
    'B': dict(tasks='multitask', distillation='B'),
    'C': dict(tasks='multitask', distillation='C'),
}


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = 'padnet'
  c.seed = 0
  c.batch_size = 4
  c.eval_batch_size = 4
  c.num_train_steps = 2000
  c.log_every_steps = 25
  c.eval_every_steps = 1000
  c.checkpoint_every_steps = 200
  c.keep_checkpoints = 3
  c.data_threads = 2
  c.num_devices = 0  # 0 = every device
  c.init_from = ''  # e.g. torchvision resnet50.pth: the front-end only, heads keep their init
  c.init_layout = 'torchvision_resnet'
  c.num_eval_examples = 0  # 0 = the whole validation split

  c.dataset = ml_collections.ConfigDict(dict(
      name='synthetic', seed=0, num_train=8000, num_val=100, image_size=(80, 80),
      domain='source',
      # Flip only. recipe='zoom' turns on PAD-Net's centre zoom by a factor from `zoom` with
      # depth / factor (MTL-PyTorch ScaleNRotate; jaxseg.data.recipes).
      augment=dict(recipe='deeplab', scales=(), scale_range=(), zoom=(1.0, 1.2, 1.5),
                   crop_size=(80, 80), flip=True, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                   bgr=False)))

  c.model = ml_collections.ConfigDict(dict(
      name='padnet',
      tasks='multitask',  # multitask | depth | parsing | depth_parsing (see the ablations)
      distillation='C',  # none | A | B | C
      gate_source='target',  # module C gate from the target task (paper) | source (MTL-PyTorch)
      distill_input='predictions',  # uncertain: paper re-embeds predictions; MTL-PyTorch features
      features=64,  # N (paper 512): main branches N, auxiliary N/2, decoders N/2, N/4
      depth=50, width=32,  # the ResNet front-end (paper ResNet-50 / 101, width 64)
      layout='pytorch', deep_stem=False, output_stride=8, pool_ceil_mode=False,
      bn_mode='train', head_bn_mode='train',
      # Uncertain (the paper says only "shallower maps are resized and concatenated"):
      aggregate_layers=('layer1', 'layer2', 'layer3'), aggregate_features=32,
      deconv_kernel=4,  # uncertain: not given by the sources
      # 'matmul': weight gradients as matrix products (jaxseg.nn.conv_vjp); 0.69 vs 0.77 s/step
      # for this default on 2 CPU cores. 'xla': XLA's own convolution gradients.
      align_corners=False, conv_impl='matmul', dtype='float32',
      # 'fast': the layers' initializers drawn as one random op (seconds to compile on CPU
      # instead of minutes); 'flax': module.init (same distribution, different draws).
      param_init='fast'))

  c.loss = ml_collections.ConfigDict(dict(
      weights=dict(PAPER_LOSS_WEIGHTS),
      depth_kind='l2',  # paper Euclidean [N]; MTL-PyTorch 'l1'
      normals_kind='l2',  # paper Euclidean [N]; MTL-PyTorch 'l1', also 'cosine'
      contour_pos_weight=0.0,  # 0 = HED class balance from the batch; MTL-PyTorch 0.95
      resize='prediction'))  # upsample predictions to the labels (MTL-PyTorch deep supervision)

  c.evaluation = ml_collections.ConfigDict(dict(
      min_depth=1e-3, max_depth=10.0,  # 0 = no upper bound
      gt_range='mask',  # gt outside (min, max) dropped ('clip': big_vision)
      eigen_crop=False,  # NYUD 480x640 Eigen crop (scaled for other sizes)
      depth_resize='bilinear',
      contour_thresholds=99, contour_tolerance=0))  # exact pixel matching (no seism tolerance)

  c.optimizer = ml_collections.ConfigDict(dict(
      name='adam', learning_rate=1e-3, weight_decay=1e-4, schedule='poly', power=0.9,
      warmup_steps=50, param_groups=()))
  c.predict = ml_collections.ConfigDict(dict(num_examples=4, input=''))  # input: folder or glob

  for flag in [a for a in (arg or '').split(',') if a]:
    _apply(c, flag)
  return c


def _apply(c, flag):
  """Applies one variant or ablation flag to the config in place."""
  if flag in ABLATIONS:
    c.model.update(ABLATIONS[flag])
  elif flag == 'smoke':
    c.batch_size = 2
    c.eval_batch_size = 2
    c.num_train_steps = 20
    c.log_every_steps = 5
    c.eval_every_steps = 10
    c.checkpoint_every_steps = 10
    c.dataset.num_train = 32
    c.dataset.num_val = 4
    c.dataset.image_size = (48, 48)
    c.dataset.augment.crop_size = (48, 48)
    c.model.update(depth=14, width=8, features=16, aggregate_features=8)
    c.optimizer.warmup_steps = 0
    c.predict.num_examples = 2
  elif flag == 'nyuv2':
    # MTL-PyTorch recipe where the paper's is unknown (padnet.md §2.6-2.7).
    c.batch_size = 8
    c.eval_batch_size = 2
    c.num_train_steps = 10000  # 100 epochs of 795 frames at batch 8
    c.log_every_steps = 50
    c.eval_every_steps = 2000
    c.checkpoint_every_steps = 1000
    c.dataset = ml_collections.ConfigDict(dict(
        name='nyuv2', seed=0, data_dir='', prepared_dir='', num_classes=40,  # 795 / 654
        # MTL-PyTorch: flip, centre zoom 1 / 1.2 / 1.5 with depth / zoom, full 480x640 frames.
        augment=dict(recipe='zoom', zoom=(1.0, 1.2, 1.5), scales=(), scale_range=(),
                     crop_size=(480, 640), flip=True, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                     bgr=False)))
    c.model.update(depth=50, width=64, features=512, aggregate_features=256)
    c.evaluation.update(eigen_crop=True, min_depth=1e-3, max_depth=10.0)
    c.optimizer.update(learning_rate=1e-4, weight_decay=1e-4, warmup_steps=0)
  elif flag == 'cityscapes':
    # Uncertain: the sources give no Cityscapes recipe; batch, crop and steps follow PSPNet-style
    # Cityscapes training, the optimizer MTL-PyTorch's.
    c.batch_size = 8
    c.eval_batch_size = 1
    c.num_train_steps = 40000
    c.log_every_steps = 50
    c.eval_every_steps = 5000
    c.checkpoint_every_steps = 2000
    c.dataset = ml_collections.ConfigDict(dict(
        name='cityscapes', seed=0, data_dir='', prepared_dir='', num_classes=19,  # 2975 / 500
        depth=True,  # depth from the disparity maps
        # Uncertain: no source gives PAD-Net's Cityscapes augmentation; DeepLab-style scales
        # with depth / scale, crop 512x1024.
        augment=dict(recipe='deeplab', scales=(0.5, 0.75, 1.0, 1.25, 1.5), scale_range=(),
                     depth_scaling=True, zoom=(1.0,), crop_size=(512, 1024), flip=True,
                     mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr=False)))
    c.model.update(depth=101, width=64, features=512, aggregate_features=256)
    # Uncertain: depth from stereo disparity; 80 m is the usual outdoor cap.
    c.evaluation.update(eigen_crop=False, min_depth=1e-3, max_depth=80.0)
    c.optimizer.update(learning_rate=1e-4, weight_decay=1e-4, warmup_steps=0)
  else:
    raise ValueError(f'configs/padnet.py: unknown variant {flag!r}; use smoke, nyuv2, '
                     f'cityscapes or an ablation {sorted(ABLATIONS)}, comma-separated')
