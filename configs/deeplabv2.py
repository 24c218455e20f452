"""DeepLab v2: caffe-layout dilated ResNet-101, ASPP (6/12/18/24, summed), multi-scale input.

  python -m jaxseg.main --config=configs/deeplabv2.py --workdir=runs/deeplabv2

Variants after ':':
  (none)  the embedded synthetic scenes (129x129 renders, 97x97 crops), sized to train in
          about half an hour on a 2-core CPU: ResNet-50 instead of the paper's ResNet-101
          (--config.model.depth=101 restores it), and, as there are no pretrained weights for
          these scenes, trainable BatchNorm and a higher learning rate with warm-up. The
          model (caffe layout, OS 8, ASPP 6/12/18/24 summed, MSC 1/0.75/0.5 with the 4-term
          loss) is the paper's.
  smoke   the same at toy size (ResNet depth 14, width 8): a 2-minute end-to-end check.
  voc     the paper's PASCAL VOC 2012 recipe: batch 10, crop 321, 20k steps, lr 2.5e-4 poly 0.9,
          frozen BatchNorm, head 10x / bias 20x; needs the VOC data (datasets issue) and the
          DeepLab init via --config.init_from=... (weights issue).
Override any field with --config.<field>=<value>, e.g. --config.num_train_steps=500.
"""
import ml_collections

# Caffe BGR pixel mean of the DeepLab / ImageNet-COCO init (0-255 range, no std division).
BGR_MEAN = (104.008, 116.669, 122.675)


def deeplab_param_groups(freeze_bn: bool):
  """Caffe lr_mult/decay_mult: backbone 1x, ASPP weights 10x, ASPP biases 20x without decay."""
  bn = dict(name='batchnorm', pattern=r'(^|/)(bn\d*|downsample_bn)/', frozen=freeze_bn,
            lr_mult=1.0, weight_decay=0.0)
  return [
      bn,
      dict(name='head_bias', pattern=r'(^|/)aspp[^/]*/.*bias$', lr_mult=20.0, weight_decay=0.0,
           frozen=False),
      dict(name='head_weight', pattern=r'(^|/)aspp[^/]*/', lr_mult=10.0, weight_decay=None,
           frozen=False),
  ]


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = 'segmentation'
  c.seed = 0
  c.batch_size = 4
  c.eval_batch_size = 4
  c.num_train_steps = 1500
  c.log_every_steps = 25
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 250
  c.keep_checkpoints = 3
  c.data_threads = 2
  c.num_devices = 0  # 0 = every device
  c.init_from = ''  # pretrained weights (.pth / converted dir), used when no checkpoint exists
  # Key layout of init_from: deeplabv2 (the DeepLab init files: `Scale.`-prefixed keys, ASPP
  # layer5), adaptsegnet_multi, torchvision_resnet (backbone only: the heads keep their init),
  # plain. Converted dirs / .npz (`python -m jaxseg.convert`) need no layout for their keys, but
  # name the one they were converted with so backbone-only files may leave the heads initialised.
  c.init_layout = 'deeplabv2'
  c.num_eval_examples = 0  # 0 = the whole validation split

  c.dataset = ml_collections.ConfigDict(dict(
      name='synthetic', seed=0, num_train=4000, num_val=100, image_size=(129, 129),
      domain='source',
      augment=dict(scales=(0.5, 0.75, 1.0, 1.25, 1.5), scale_range=(), crop_size=(97, 97),
                   flip=True, mean=BGR_MEAN, std=(1.0, 1.0, 1.0), bgr=True)))

  c.model = ml_collections.ConfigDict(dict(
      name='deeplabv2', depth=50, width=64, layout='caffe', output_stride=8, bn_mode='train',
      aspp_rates=(6, 12, 18, 24), aspp_branches=0, multi_level=False,
      msc=True, msc_scales=(1.0, 0.75, 0.5),
      align_corners=False,  # deeplab-pytorch: False; Caffe Interp: True (+-0.2 mIoU, spec §4)
      conv_impl='xla', dtype='float32'))
  c.loss = ml_collections.ConfigDict(dict(at_logit_resolution=True, aux_weight=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.01, momentum=0.9, weight_decay=5e-4, nesterov=False,
      schedule='poly', power=0.9, warmup_steps=100,
      param_groups=deeplab_param_groups(freeze_bn=False)))
  c.predict = ml_collections.ConfigDict(dict(num_examples=4))

  if arg in (None, ''):
    pass
  elif arg == 'smoke':
    c.batch_size = 2
    c.eval_batch_size = 2
    c.num_train_steps = 30
    c.log_every_steps = 5
    c.eval_every_steps = 15
    c.checkpoint_every_steps = 10
    c.dataset.num_train = 32
    c.dataset.num_val = 6
    c.dataset.image_size = (65, 65)
    c.dataset.augment.crop_size = (49, 49)
    c.model.depth = 14
    c.model.width = 8
    c.optimizer.warmup_steps = 0
    c.predict.num_examples = 2
  elif arg == 'voc':
    c.batch_size = 10
    c.eval_batch_size = 1
    c.num_train_steps = 15000
    c.log_every_steps = 50
    c.eval_every_steps = 5000
    c.checkpoint_every_steps = 1000
    c.dataset.name = 'voc'
    c.dataset.augment.crop_size = (321, 321)
    c.model.depth = 101
    c.model.bn_mode = 'frozen'
    c.optimizer.learning_rate = 2.5e-4
    c.optimizer.warmup_steps = 0
    c.optimizer.param_groups = deeplab_param_groups(freeze_bn=True)
  else:
    raise ValueError(f'configs/deeplabv2.py: unknown variant {arg!r}; use smoke or voc')
  return c
