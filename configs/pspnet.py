"""PSPNet: deep-stem dilated ResNet (OS 8), Pyramid Pooling Module (1/2/3/6), auxiliary head.

  python -m jaxseg.main --config=configs/pspnet.py --workdir=runs/pspnet

Variants after ':', comma-separated and combinable (`configs/pspnet.py:smoke,no_aux`); at most
one of the datasets:
  (none)      the embedded synthetic scenes (97x97 renders, 65x65 crops = 8k+1 as semseg wants),
              sized to train in ~15-20 minutes on a 2-core CPU: ResNet-50 at width 16 (the paper:
              --config.model.depth=101 --config.model.width=64), batch 8, 600 steps, BN trained
              (global-batch statistics). The PSPNet recipe otherwise: SGD 0.01 poly 0.9,
              momentum 0.9, wd 1e-4, aux weight 0.4, dropout 0.1, scale 0.5-2 / rotate +-10 /
              blur / flip augmentation. From scratch the heads keep the backbone's rate
              (head_lr_mult 1, as configs/deeplabv2.py found for a from-scratch backbone);
              --config.optimizer.param_groups.head.lr_mult=10 restores the paper's 10x.
  smoke       the same at toy size (ResNet depth 14, width 8, 33x33 crops): a 1-minute check.
  cityscapes  Cityscapes fine (19 trainIds), crop 713, batch 16, 37k steps (semseg: 200 epochs of
              2975 images; the paper's 90k is [paper~] in the spec); --config.dataset.data_dir.
  ade20k      ADE20K (150 classes), crop 473, batch 16, 126k steps (semseg: 100 epochs; the
              paper's 150k is [paper~]); --config.dataset.data_dir=<ADEChallengeData2016>.
  voc         PASCAL VOC 2012 train_aug (21 classes), crop 473, batch 16, 33k steps (semseg: 50
              epochs of 10,582; the paper's 30k is [paper~]); --config.dataset.data_dir=<VOCdevkit>.
              The real-data variants are ResNet-101 at width 64 with heads (ppm, cls, aux) at 10x
              and expect the authors' deep-stem ImageNet init: --config.init_from=resnet101_v2.pth
              (init_layout semseg_resnet; an mmseg ResNetV1c init needs init_layout
              mmseg_resnetv1c, model.stem_width=32 and model.contract_dilation=True). Evaluation
              is whole-image (the sliding-window test protocol of spec §5 is eval.inference).
  no_ppm      ablation: the main head straight on layer4 (2048 channels at width 64), no PPM.
  no_aux      ablation: no auxiliary head (loss.aux_weight 0, model.aux False).
Real datasets are prepared once into --config.dataset.prepared_dir (jaxseg/data/README.md).
Override any field with --config.<field>=<value>, e.g. --config.num_train_steps=200.
"""
import ml_collections

from jaxseg import configlib
from jaxseg.inference import config as inference_config
from jaxseg.data import recipes

DATASETS = ('cityscapes', 'ade20k', 'voc')
FLAGS = ('smoke', 'no_ppm', 'no_aux') + DATASETS
# semseg schedules (spec §4, [code]): epochs * train images / batch 16.
REAL_STEPS = {'cityscapes': 37_000, 'ade20k': 126_000, 'voc': 33_000}
REAL_CROP = {'cityscapes': (713, 713), 'ade20k': (473, 473), 'voc': (473, 473)}


def head_param_groups(lr_mult: float) -> dict:
  """semseg's groups: the heads (ppm, cls, aux) at `lr_mult` x the base rate, the backbone 1x
  ('default'). Mapping form: --config.optimizer.param_groups.head.lr_mult=... overrides it."""
  return {'head': dict(pattern=r'^(ppm|cls|aux)/', lr_mult=lr_mult, optional=True)}


def get_config(arg=None):
  flags, _ = configlib.parse_variants(arg, FLAGS, config_file='configs/pspnet.py')
  datasets = [f for f in flags if f in DATASETS]
  if len(datasets) > 1:
    raise configlib.ConfigError(f'configs/pspnet.py: at most one dataset, got {datasets}')

  c = configlib.trainer(
      'pspnet', batch_size=8, eval_batch_size=4, num_train_steps=600, log_every_steps=25,
      eval_every_steps=300, checkpoint_every_steps=100, keep_checkpoints=2,
      init_layout='semseg_resnet')
  c.dataset = ml_collections.ConfigDict(dict(
      name='synthetic', seed=0, num_train=4000, num_val=100, image_size=(97, 97),
      domain='source', augment=recipes.recipe('pspnet', crop_size=(65, 65))))
  c.model = ml_collections.ConfigDict(dict(
      name='pspnet', depth=50, width=16,
      stem_width=0,              # 0 = width (semseg 64-64-128); mmseg ResNetV1c: width // 2
      contract_dilation=False,   # semseg: dilation 2 / 4 in every block; mmseg: True
      output_stride=8, bn_mode='train',
      use_ppm=True, bins=(1, 2, 3, 6),
      ppm_features=0,            # 0 = C / len(bins) (semseg); mmseg 512
      head_features=128, aux=True, aux_features=64, dropout=0.1,  # 512 / 256 at width 64
      align_corners=True,        # semseg / Caffe Interp; mmseg False
      conv_impl='xla', dtype='float32'))
  c.loss = ml_collections.ConfigDict(dict(at_logit_resolution=False, aux_weight=0.4))
  # Evaluation / predict (jaxseg.inference.config): inference mode, scales, flip, dense CRF.
  c.eval = inference_config.eval_block()
  c.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.01, momentum=0.9, weight_decay=1e-4, nesterov=False,
      schedule='poly', power=0.9,
      warmup_steps=20,  # a jaxseg choice for the from-scratch synthetic runs; 0 in the recipes
      param_groups=head_param_groups(1.0)))

  if 'smoke' in flags:
    configlib.smoke(c)
    c.dataset.update(num_train=32, num_val=6, image_size=(41, 41))
    c.dataset.augment.crop_size = (33, 33)
    c.model.update(depth=14, width=8, head_features=16, aux_features=8)
    c.optimizer.warmup_steps = 0
  if datasets:
    name = datasets[0]
    c.update(dict(batch_size=16, eval_batch_size=1, num_train_steps=REAL_STEPS[name],
                  log_every_steps=50, eval_every_steps=5000, checkpoint_every_steps=1000))
    c.dataset = ml_collections.ConfigDict(dict(
        name=name, data_dir='', prepared_dir='',
        augment=recipes.recipe('pspnet', crop_size=REAL_CROP[name])))
    c.model.update(depth=101, width=64, head_features=512, aux_features=256)
    c.optimizer.param_groups = head_param_groups(10.0)
    c.optimizer.warmup_steps = 0
    # The semseg test protocol: sliding windows of the training crop (stride ceil(2/3 crop)),
    # reported at one scale and, as 'tta/', at scales 0.5-1.75 with flips.
    c.eval.inference.update(mode='slide', crop_size=REAL_CROP[name],
                            scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flip=True)
  if 'no_ppm' in flags:
    c.model.use_ppm = False
  if 'no_aux' in flags:
    c.loss.aux_weight = 0.0
    c.model.aux = False
  return c
