"""AdaptSegNet: output-space, multi-level adversarial domain adaptation (Tsai et al., CVPR 2018).

  python -m jaxseg.main --config=configs/adaptsegnet.py --workdir=runs/adaptsegnet

Variants after ':', comma-separated and combinable (`configs/adaptsegnet.py:gta5,single_level`):
  (none)        the embedded synthetic scenes: flat-shaded 'source' renders (labelled) -> the
                textured, colour-cast, noisy 'target' renders (unlabelled in training; evaluated
                on the target domain's val split). Sized for ~3 min on 2 loaded CPU cores
                (measured 2.4 steps/s at load ~20): ResNet depth 14 at width 8, D with ndf 16,
                49x49 renders, batch 2 + 2, 300 steps. No pretrained
                weights exist for these scenes, so the generator learns from scratch with a
                higher learning rate (1e-2, warm-up 50) and the classifiers at 1x (the released
                10x diverges from scratch, as measured for configs/deeplabv2.py), and the
                adversarial weights are 10x the release's (the release's are tuned for a
                pretrained G; 0.002 / 0.01 here, loss.adv_weights).
  smoke         the same at toy size (depth 14, width 8, 41x41, 20 steps): < 2 min end to end.
  gta5          the release: GTA5 (24,966, resized to 1280x720) -> Cityscapes train (2,975,
                1024x512, no labels); Cityscapes val at 1024x512, pred2 up-sampled to 2048x1024
                (align_corners=True), 19-class mIoU over the split. ResNet-101, batch 1 + 1,
                G SGD 2.5e-4 (classifiers 10x), momentum 0.9, wd 5e-4, poly 0.9 over 250k, stop
                at 150k; D Adam 1e-4 (0.9, 0.99), same poly. Needs --config.dataset.data_dir,
                --config.dataset.target.data_dir, --config.dataset.val_dataset.data_dir and the
                DeepLab init (--config.init_from=DeepLab_resnet_pretrained_init-f81d91e8.pth,
                layout deeplabv2: the conv5 classifier and D start from their initialisation).
                Evaluating a released checkpoint (GTA2Cityscapes_multi-ed35151c.pth; the
                single-level file has the same DeeplabMulti layout and is evaluated the same):
                  python -m jaxseg.main --config=configs/adaptsegnet.py:gta5 --mode=eval
                    --config.init_from=GTA2Cityscapes_multi-ed35151c.pth
                    --config.init_layout=adaptsegnet_multi --workdir=/tmp/eval ...data_dir fields
  synthia       SYNTHIA-RAND-CITYSCAPES (1280x760) -> Cityscapes, 16 classes (`:synthia,13`: the
                paper's 13-class protocol). The release never published its SYNTHIA mapping
                (AdaptSegNet#31); jaxseg's (jaxseg/data/formats/synthia.py) is derived from the
                class ids documented in the SYNTHIA README.
  single_level  adaptation on conv5 only (λ_seg1 = 0, λ_adv1 = 0, λ_adv2 as multi-level) with the
                single-classifier generator. The release trains the two-classifier network with
                those weights; pred2, the backbone and D2 then move exactly as here (pred1 and D1
                act on nothing); --config.model.multi_level=True keeps the inert conv4 head.
  source_only   no adversarial terms, no discriminator, no target batches (the baseline).
  lsgan         LS-GAN criterion (MSE on the raw D output) instead of BCE (the release's --gan LS).
  paper         the paper's text where the release differs: 4-branch ASPP, SGD Nesterov with
                weight decay 1e-4 (a typo per AdaptSegNet#85), D output up-sampled to its input.
  released_optimizer  the release's SGD parameter list, which holds every Bottleneck conv 3x and
                every downsample conv 4x (spec §8.1): those tensors take 3-4 SGD updates per
                step. Off by default (the clean, de-duplicated optimizer = the paper's).
  seed=K        the run's seed (initialisation, data order of both domains).
Defaults that are the release's choices (spec §8; change with --config.<field>): ASPP with 2
effective branches (model.aspp_branches=2; 0 = all 4), BatchNorm with batch statistics and
frozen scale/shift (model.bn_mode='frozen_affine'), D output not up-sampled
(discriminator.upsample_output=False), align_corners=True everywhere (model.align_corners).
Override any field with --config.<field>=<value>, e.g. --config.loss.adv_weights='(5e-5,5e-4)'
(the README's smaller weights for PyTorch >= 0.4).
"""
import ml_collections

from jaxseg import configlib
from jaxseg.inference import config as inference_config
from jaxseg.data import recipes

FLAGS = ('smoke', 'gta5', 'synthia', '13', '16', 'single_level', 'source_only', 'lsgan', 'paper',
         'released_optimizer')
KEYS = {'seed': int}
ADV_WEIGHTS = (0.0002, 0.001)  # level1 (conv4), level2 (conv5): the release
SEG_AUX_WEIGHT = 0.1


def _synthetic(domain: str, seed: int, num_train: int, num_val: int, size) -> dict:
  augment = dict(recipe='resize', resize_to=size, crop_size=size, flip=False,
                 mean=recipes.ADAPTSEGNET_BGR_MEAN, std=recipes.UNIT_STD, bgr=True)
  return dict(name='synthetic', seed=seed, num_train=num_train, num_val=num_val,
              image_size=size, domain=domain, augment=augment)


def _real(name: str, augment: dict, **fields) -> dict:
  return dict(name=name, data_dir='', prepared_dir='', augment=augment, **fields)


def _synthetic_dataset(num_train: int, num_val: int, size) -> ml_collections.ConfigDict:
  """Source renders (seed 0) -> target renders (seed 1: other scenes), val on the target."""
  ds = _synthetic('source', 0, num_train, num_val, size)
  ds['target'] = _synthetic('target', 1, num_train, num_val, size)
  ds['val_dataset'] = _synthetic('target', 1, num_train, num_val, size)
  return ml_collections.ConfigDict(ds)


def _real_dataset(source: str, num_classes: int) -> ml_collections.ConfigDict:
  city = recipes.recipe('adaptsegnet_cityscapes')
  if source == 'gta5':
    ds = _real('gta5', recipes.recipe('adaptsegnet_gta5', eval_resize_to=(512, 1024)))
  else:
    ds = _real('synthia', recipes.recipe('adaptsegnet_gta5', resize_to=(760, 1280),
                                            crop_size=(760, 1280), eval_resize_to=(512, 1024)),
               num_classes=num_classes)
  classes = {} if num_classes == 19 else {'num_classes': num_classes}
  ds['target'] = _real('cityscapes', city, **classes)
  ds['val_dataset'] = dict(name='cityscapes', data_dir='', prepared_dir='', **classes)
  return ml_collections.ConfigDict(ds)


def get_config(arg=None):
  flags, keys = configlib.parse_variants(arg, FLAGS, KEYS, 'configs/adaptsegnet.py')
  c = configlib.trainer(
      'adaptsegnet', batch_size=2, eval_batch_size=4, num_train_steps=300, log_every_steps=25,
      eval_every_steps=0, checkpoint_every_steps=100, keep_checkpoints=2,
      init_layout='adaptsegnet_multi')
  c.dataset = _synthetic_dataset(2000, 100, (49, 49))
  c.model = ml_collections.ConfigDict(dict(
      name='deeplabv2', depth=14, width=8, layout='caffe', output_stride=8,
      bn_mode='frozen_affine', aspp_rates=(6, 12, 18, 24), aspp_branches=2, multi_level=True,
      msc=False, align_corners=True, conv_impl='xla', dtype='float32'))
  c.loss = ml_collections.ConfigDict(dict(
      gan='bce', seg_aux_weight=SEG_AUX_WEIGHT, adv_weights=(0.002, 0.01)))
  # Generator: the release's groups (BN affine frozen, both classifiers 10x). Never-computed
  # ASPP branches are frozen by the method (PyTorch skips tensors without a gradient).
  # Evaluation / predict (jaxseg.inference.config): inference mode, scales, flip, dense CRF.
  c.eval = inference_config.eval_block()
  c.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=1e-2, momentum=0.9, weight_decay=5e-4, nesterov=False,
      schedule='poly', power=0.9, decay_steps=0, warmup_steps=50, torch_duplicates=False,
      param_groups=dict(
          batchnorm=dict(pattern=r'(^|/)(bn\d*|downsample_bn)/', frozen=True),
          classifier=dict(pattern=r'(^|/)aspp[^/]*/', lr_mult=1.0))))
  c.discriminator = ml_collections.ConfigDict(dict(
      ndf=16, negative_slope=0.2, upsample_output=False, init_from=('', ''),
      optimizer=dict(name='adam', learning_rate=1e-4, b1=0.9, b2=0.99, eps=1e-8,
                     weight_decay=0.0, schedule='poly', power=0.9, decay_steps=0)))

  if 'smoke' in flags:
    configlib.smoke(c, steps=20, eval_every=0, checkpoint_every=10)
    c.dataset = _synthetic_dataset(16, 4, (41, 41))
    c.optimizer.warmup_steps = 0
  if 'gta5' in flags or 'synthia' in flags:
    num_classes = 13 if '13' in flags else (19 if 'gta5' in flags else 16)
    c.dataset = _real_dataset('gta5' if 'gta5' in flags else 'synthia', num_classes)
    c.update(dict(batch_size=1, eval_batch_size=1, num_train_steps=150000, log_every_steps=100,
                  eval_every_steps=10000, checkpoint_every_steps=5000, keep_checkpoints=30))
    c.init_layout = 'deeplabv2'
    c.model.depth, c.model.width = 101, 64
    c.discriminator.ndf = 64
    c.loss.adv_weights = ADV_WEIGHTS
    c.optimizer.update(dict(learning_rate=2.5e-4, decay_steps=250000, warmup_steps=0))
    c.optimizer.param_groups.classifier.lr_mult = 10.0
    c.discriminator.optimizer.decay_steps = 250000
  if 'single_level' in flags:
    c.loss.seg_aux_weight = 0.0
    c.loss.adv_weights = (0.0, c.loss.adv_weights[1])
    c.model.multi_level = False
  if 'source_only' in flags:
    c.loss.adv_weights = (0.0, 0.0)
  if 'lsgan' in flags:
    c.loss.gan = 'ls'
  if 'paper' in flags:
    c.model.aspp_branches = 0
    c.optimizer.update(dict(weight_decay=1e-4, nesterov=True))
    c.discriminator.upsample_output = True
  if 'released_optimizer' in flags:
    c.optimizer.torch_duplicates = True
  if 'seed' in keys:
    c.seed = keys['seed']
  return c
