"""PAD-Net config checks (`configs/padnet.py`): model, loss weights and kinds, evaluation."""
from jaxseg.configlib import check_choice, check_int, check_positive, fail
from jaxseg.heads.padnet_distillation import DISTILLATION_MODES, GATE_SOURCES
from jaxseg.losses.depth import RESIZE_MODES
from jaxseg.losses.normals import NORMALS_KINDS
from jaxseg.methods.padnet.loss import LOSS_TERMS
from jaxseg.methods.padnet.model import DISTILL_INPUTS, TASK_MODES


def check_config(config):
  """PAD-Net model, loss and evaluation fields (configs/padnet.py)."""
  m = config.model
  check_choice(config, 'model.name', {'padnet'})
  check_choice(config, 'model.tasks', TASK_MODES)
  check_choice(config, 'model.distillation', DISTILLATION_MODES)
  check_choice(config, 'model.gate_source', GATE_SOURCES)
  check_choice(config, 'model.distill_input', DISTILL_INPUTS)
  check_choice(config, 'model.head_bn_mode', {'frozen', 'frozen_affine', 'train'})
  check_choice(config, 'model.param_init', {'fast', 'flax'})
  for field, minimum in (('features', 4), ('width', 1), ('aggregate_features', 1),
                         ('deconv_kernel', 2)):
    check_int(config, f'model.{field}', minimum)
  if m.features % 4:
    fail('model.features', m.features, 'must be divisible by 4 (branches N/2, decoders N/4)')
  if not set(m.aggregate_layers) <= {'layer1', 'layer2', 'layer3'}:
    fail('model.aggregate_layers', tuple(m.aggregate_layers),
          "must be a subset of ('layer1', 'layer2', 'layer3')")
  weights = config.loss.weights
  for term in weights:
    if term not in LOSS_TERMS:
      fail(f'loss.weights.{term}', weights[term], f'unknown term; terms are {LOSS_TERMS}')
    check_positive(config, f'loss.weights.{term}', allow_zero=True)
  finals = {'multitask': ('depth', 'parsing'), 'depth_parsing': ('depth', 'parsing'),
            'depth': ('depth',), 'parsing': ('parsing',)}[m.tasks]
  for term in finals:
    if not weights.get(term, 0.0) > 0:
      fail(f'loss.weights.{term}', weights.get(term, 0.0),
            f'must be > 0: config.model.tasks={m.tasks!r} trains that final task')
  check_choice(config, 'loss.depth_kind', {'l1', 'l2'})
  check_choice(config, 'loss.normals_kind', NORMALS_KINDS)
  check_choice(config, 'loss.resize', RESIZE_MODES)
  beta = check_positive(config, 'loss.contour_pos_weight', allow_zero=True)
  if beta >= 1:
    fail('loss.contour_pos_weight', beta, 'must be in [0, 1) (0 = class balance per batch)')
  ev = config.evaluation
  check_positive(config, 'evaluation.min_depth')
  check_positive(config, 'evaluation.max_depth', allow_zero=True)
  if ev.max_depth and ev.max_depth <= ev.min_depth:
    fail('evaluation.max_depth', ev.max_depth,
          f'must be 0 (no bound) or > config.evaluation.min_depth={ev.min_depth}')
  check_choice(config, 'evaluation.gt_range', {'mask', 'clip'})
  check_choice(config, 'evaluation.depth_resize', {'bilinear', 'nearest'})
  check_int(config, 'evaluation.contour_thresholds', 1)
  check_int(config, 'evaluation.contour_tolerance', 0)
