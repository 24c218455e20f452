"""DeepLab v2: caffe-layout dilated ResNet-101, ASPP (6/12/18/24, summed), multi-scale input.

  python -m jaxseg.main --config=configs/deeplabv2.py --workdir=runs/deeplabv2

Variants after ':':
  (none)  the embedded synthetic scenes (97x97 renders, 65x65 crops), sized to train in
          well under an hour on a 2-core CPU: ResNet-50 at half width (--config.model.depth=101
          --config.model.width=64 restores the paper's ResNet-101). The model (caffe layout,
          OS 8, ASPP 6/12/18/24 summed, MSC 1/0.75/0.5 with the 4-term loss) is the paper's.
          There are no pretrained weights for these scenes, so BatchNorm trains and the head
          keeps the backbone's learning rate: with a from-scratch backbone the paper's 10x/20x
          head multipliers diverged (measured: lr 1e-3 with 10x -> loss 8.5 -> 40 in two steps;
          lr 3e-3 with 1x decreased smoothly).
  smoke   the same at toy size (ResNet depth 14, width 8): a 2-minute end-to-end check.
  voc     the paper's PASCAL VOC 2012 recipe: batch 10, crop 321, 20k steps, lr 2.5e-4 poly 0.9,
          frozen BatchNorm, head 10x / bias 20x, on train_aug (VOC + SBD); needs
          --config.dataset.data_dir=<VOCdevkit> and the DeepLab init via --config.init_from=...
  cityscapes  the same recipe on Cityscapes fine (19 trainIds) with 513x513 crops (a jaxseg
          choice: the spec records no Cityscapes schedule); --config.dataset.data_dir=<root>.
  ade20k  the VOC recipe on ADE20K (SceneParsing: 150 classes, 'other' ignored) with 321x321
          crops and 100k steps (batch 10: ~50 epochs of the 20,210 training images) -- both a
          jaxseg choice: DeepLab v2 published no ADE20K schedule (PSPNet's is 150k at batch 16,
          473 crops); --config.dataset.data_dir=<ADEChallengeData2016>.
  gta5, synthia  source-only baselines of AdaptSegNet's network (no MSC, batch 1, lr 2.5e-4,
          150k steps): GTA5 resized to 1280x720 / SYNTHIA at 1280x760 (16 classes), evaluated on
          Cityscapes val at 1024x512; set --config.dataset.data_dir and
          --config.dataset.val_dataset.data_dir (13 classes: set both num_classes fields).
Real datasets are prepared once into --config.dataset.prepared_dir (default
~/.cache/jaxseg/tfds); see jaxseg/data/README.md.
Override any field with --config.<field>=<value>, e.g. --config.num_train_steps=500.
"""
import ml_collections

from jaxseg.data import transforms

# Caffe BGR pixel mean of the DeepLab / ImageNet-COCO init (0-255 range, no std division).
BGR_MEAN = (104.008, 116.669, 122.675)


def deeplab_param_groups(freeze_bn: bool, head_lr_mult: float = 10.0,
                         head_bias_lr_mult: float = 20.0) -> dict:
  """Caffe lr_mult/decay_mult: backbone 1x, ASPP weights 10x, ASPP biases 20x without decay.

  Ordered name -> group (first match wins; the rest is 'default', 1x), so one field can be
  overridden: --config.optimizer.param_groups.head_weight.lr_mult=1.
  """
  return {
      'batchnorm': dict(pattern=r'(^|/)(bn\d*|downsample_bn)/', frozen=freeze_bn, lr_mult=1.0,
                        weight_decay=0.0),
      'head_bias': dict(pattern=r'(^|/)aspp[^/]*/.*bias$', lr_mult=head_bias_lr_mult,
                        weight_decay=0.0, frozen=False),
      'head_weight': dict(pattern=r'(^|/)aspp[^/]*/', lr_mult=head_lr_mult, frozen=False),
  }


def real_dataset(name: str, augment: dict, **fields) -> ml_collections.ConfigDict:
  """config.dataset for a dataset in its publisher's layout (fields: jaxseg/data/README.md)."""
  return ml_collections.ConfigDict(dict(name=name, data_dir='', prepared_dir='',
                                        augment=augment, **fields))


def _cityscapes_val(num_classes: int = 19) -> dict:
  return dict(name='cityscapes', data_dir='', prepared_dir='', num_classes=num_classes)


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.method = 'deeplabv2'
  c.seed = 0
  c.batch_size = 4
  c.eval_batch_size = 4
  c.num_train_steps = 1000
  c.log_every_steps = 25
  c.eval_every_steps = 250
  c.checkpoint_every_steps = 100
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
      name='synthetic', seed=0, num_train=4000, num_val=100, image_size=(97, 97),
      domain='source',
      augment=dict(scales=(0.5, 0.75, 1.0, 1.25, 1.5), scale_range=(), crop_size=(65, 65),
                   flip=True, mean=BGR_MEAN, std=(1.0, 1.0, 1.0), bgr=True)))

  c.model = ml_collections.ConfigDict(dict(
      name='deeplabv2', depth=50, width=32, layout='caffe', output_stride=8, bn_mode='train',
      aspp_rates=(6, 12, 18, 24), aspp_branches=0, multi_level=False,
      msc=True, msc_scales=(1.0, 0.75, 0.5),
      align_corners=False,  # deeplab-pytorch: False; Caffe Interp: True (+-0.2 mIoU, spec §4)
      conv_impl='matmul',  # weight gradients as GEMMs (jaxseg.nn.conv_vjp); 'xla' = XLA's own
      dtype='float32'))
  c.loss = ml_collections.ConfigDict(dict(at_logit_resolution=True, aux_weight=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.003, momentum=0.9, weight_decay=5e-4, nesterov=False,
      schedule='poly', power=0.9, warmup_steps=50,
      param_groups=deeplab_param_groups(freeze_bn=False, head_lr_mult=1.0,
                                        head_bias_lr_mult=1.0)))
  c.predict = ml_collections.ConfigDict(dict(num_examples=4, input=''))  # input: folder or glob

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
  elif arg in ('voc', 'cityscapes', 'ade20k'):
    c.batch_size = 10
    c.eval_batch_size = 1
    c.num_train_steps = 100000 if arg == 'ade20k' else 20000
    c.log_every_steps = 50
    c.eval_every_steps = 5000
    c.checkpoint_every_steps = 1000
    crop = (513, 513) if arg == 'cityscapes' else (321, 321)
    c.dataset = real_dataset(arg, transforms.recipe('deeplabv2', crop_size=crop))
    c.model.depth = 101
    c.model.width = 64
    c.model.bn_mode = 'frozen'
    c.optimizer.learning_rate = 2.5e-4
    c.optimizer.warmup_steps = 0
    c.optimizer.param_groups = deeplab_param_groups(freeze_bn=True)
  elif arg in ('gta5', 'synthia'):
    c.batch_size = 1
    c.eval_batch_size = 1
    c.num_train_steps = 100000
    c.log_every_steps = 100
    c.eval_every_steps = 10000
    c.checkpoint_every_steps = 5000
    if arg == 'gta5':
      augment = transforms.recipe('adaptsegnet_gta5', eval_resize_to=(512, 1024))
      c.dataset = real_dataset('gta5', augment, val_dataset=_cityscapes_val())
    else:
      augment = transforms.recipe('adaptsegnet_gta5', resize_to=(760, 1280),
                                  crop_size=(760, 1280), eval_resize_to=(512, 1024))
      c.dataset = real_dataset('synthia', augment, num_classes=16,
                               val_dataset=_cityscapes_val(16))
    c.model.depth = 101
    c.model.width = 64
    c.model.msc = False
    c.model.bn_mode = 'frozen'
    c.optimizer.learning_rate = 2.5e-4
    c.optimizer.warmup_steps = 0
    c.optimizer.param_groups = deeplab_param_groups(freeze_bn=True)
  else:
    raise ValueError(f'configs/deeplabv2.py: unknown variant {arg!r}; use smoke, voc, '
                     'cityscapes, ade20k, gta5 or synthia')
  return c
