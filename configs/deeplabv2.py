"""DeepLab v2: caffe-layout dilated ResNet-101, ASPP (6/12/18/24, summed), multi-scale input.

  python -m jaxseg.main --config=configs/deeplabv2.py --workdir=runs/deeplabv2

Variants after ':' (comma-separated; at most one dataset, `smoke` combines with any:
`configs/deeplabv2.py:voc,smoke`; `seed=<int>` sets config.seed):
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

from jaxseg import configlib
from jaxseg.inference import config as inference_config
from jaxseg.data import recipes
from jaxseg.methods.deeplabv2.param_groups import deeplab_param_groups

DATASETS = ('voc', 'cityscapes', 'ade20k', 'gta5', 'synthia')
FLAGS = ('smoke',) + DATASETS
KEYS = {'seed': int}


def real_dataset(name: str, augment: dict, **fields) -> ml_collections.ConfigDict:
  """config.dataset for a dataset in its publisher's layout (fields: jaxseg/data/README.md)."""
  return ml_collections.ConfigDict(dict(name=name, data_dir='', prepared_dir='',
                                        augment=augment, **fields))


def _cityscapes_val(num_classes: int = 19) -> dict:
  return dict(name='cityscapes', data_dir='', prepared_dir='', num_classes=num_classes)


def get_config(arg=None):
  flags, keys = configlib.parse_variants(arg, FLAGS, KEYS, 'configs/deeplabv2.py')
  datasets = [f for f in flags if f in DATASETS]
  if len(datasets) > 1:
    raise configlib.ConfigError(f'configs/deeplabv2.py: one dataset at a time, got {datasets}')
  # Key layout of init_from: deeplabv2 (the DeepLab init files: `Scale.`-prefixed keys, ASPP
  # layer5), adaptsegnet_multi, torchvision_resnet (backbone only: the heads keep their init),
  # plain. Converted dirs / .npz (`python -m jaxseg.convert`) need no layout for their keys, but
  # name the one they were converted with so backbone-only files may leave the heads initialised.
  c = configlib.trainer('deeplabv2', init_layout='deeplabv2')

  c.dataset = ml_collections.ConfigDict(dict(
      name='synthetic', seed=0, num_train=4000, num_val=100, image_size=(97, 97),
      domain='source',
      augment=dict(scales=(0.5, 0.75, 1.0, 1.25, 1.5), scale_range=(), crop_size=(65, 65),
                   flip=True, mean=recipes.CAFFE_BGR_MEAN, std=recipes.UNIT_STD, bgr=True)))

  c.model = ml_collections.ConfigDict(dict(
      name='deeplabv2', depth=50, width=32, layout='caffe', output_stride=8, bn_mode='train',
      aspp_rates=(6, 12, 18, 24), aspp_branches=0, multi_level=False,
      msc=True, msc_scales=(1.0, 0.75, 0.5),
      # How MSC scales the input: deeplab-pytorch's F.interpolate(scale_factor=s) (the released
      # weights users load; default), 'caffe_interp' (the original prototxt), or 'size'.
      msc_resize_rule='pytorch_scale_factor',
      align_corners=False,  # deeplab-pytorch: False; Caffe Interp: True (+-0.2 mIoU, spec §4)
      conv_impl='matmul',  # weight gradients as GEMMs (jaxseg.nn.conv_vjp); 'xla' = XLA's own
      dtype='float32'))
  c.loss = ml_collections.ConfigDict(dict(at_logit_resolution=True, aux_weight=0.0))
  c.optimizer = ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.003, momentum=0.9, weight_decay=5e-4, nesterov=False,
      schedule='poly', power=0.9, warmup_steps=50,
      param_groups=deeplab_param_groups(freeze_bn=False, head_lr_mult=1.0,
                                        head_bias_lr_mult=1.0)))
  # Evaluation / predict (jaxseg.inference.config): whole image at one scale is the DeepLab v2
  # protocol (MSC is inside the model); scales/flip/slide add a 'tta/' evaluation, and
  # --config.eval.crf=True a 'crf/' one (dense CRF, DeepLab v2's VOC parameters).
  c.eval = inference_config.eval_block()

  if datasets:
    _real_recipe(c, datasets[0])
  if 'smoke' in flags:
    configlib.smoke(c)
    c.dataset.num_train = 32
    c.dataset.num_val = 6
    c.dataset.image_size = (65, 65)
    c.dataset.augment.crop_size = (49, 49)
    c.model.depth = 14
    c.model.width = 8
    c.optimizer.warmup_steps = 0
  c.update(keys)
  return c


def _real_recipe(c, name: str):
  """The paper's recipe on a real dataset (in place)."""
  c.model.depth = 101
  c.model.width = 64
  c.model.bn_mode = 'frozen'
  c.optimizer.learning_rate = 2.5e-4
  c.optimizer.warmup_steps = 0
  c.optimizer.param_groups = deeplab_param_groups(freeze_bn=True)
  if name in ('voc', 'cityscapes', 'ade20k'):
    c.update(dict(batch_size=10, eval_batch_size=1, log_every_steps=50, eval_every_steps=5000,
                  checkpoint_every_steps=1000,
                  num_train_steps=100000 if name == 'ade20k' else 20000))
    crop = (513, 513) if name == 'cityscapes' else (321, 321)
    c.dataset = real_dataset(name, recipes.recipe('deeplabv2', crop_size=crop))
    return
  c.update(dict(batch_size=1, eval_batch_size=1, num_train_steps=100000, log_every_steps=100,
                eval_every_steps=10000, checkpoint_every_steps=5000))
  c.model.msc = False
  if name == 'gta5':
    augment = recipes.recipe('adaptsegnet_gta5', eval_resize_to=(512, 1024))
    c.dataset = real_dataset('gta5', augment, val_dataset=_cityscapes_val())
  else:
    augment = recipes.recipe('adaptsegnet_gta5', resize_to=(760, 1280), crop_size=(760, 1280),
                             eval_resize_to=(512, 1024))
    c.dataset = real_dataset('synthia', augment, num_classes=16, val_dataset=_cityscapes_val(16))
