"""jaxseg.bench runs end to end on the smoke config, the PyTorch row included when torch is
installed (nothing timed)."""
import math

import pytest

from jaxseg.bench import benchmark, torch_env
from jaxseg.config_files import load_config

BENCH_FIELDS = {'what', 'batch', 'size', 'compile_s', 'step_s', 'step_times', 'images_per_s',
                'gflop_per_step', 'gflops_per_s', 'xla_peak_mb', 'max_rss_mb', 'step_rss_mb',
                'cpu_util', 'device'}
ROW_FIELDS = {'name', 'what', 'batch', 'size', 'compile_s', 'step_s', 'step_times', 'vs_torch',
              'gflop_per_step', 'model_gflop_per_step', 'gflops_per_s', 'peak_share',
              'xla_peak_mb', 'step_rss_mb', 'cpu_util', 'images_per_s'}


def smoke(**model):
  c = load_config('configs/deeplabv2.py:smoke')
  c.batch_size = 1
  c.dataset.augment.crop_size = (33, 33)
  c.model.msc = False
  for k, v in model.items():
    c.model[k] = v
  return c


def test_benchmark_returns_every_field():
  r = benchmark.benchmark(smoke(), 'train', steps=1, warmup=0)
  assert BENCH_FIELDS <= set(r), BENCH_FIELDS - set(r)
  assert r['what'] == 'train' and r['batch'] == 1 and r['size'] == '33x33'
  assert len(r['step_times']) == 1
  for k in ('compile_s', 'step_s', 'images_per_s', 'gflop_per_step', 'gflops_per_s',
            'xla_peak_mb', 'max_rss_mb'):
    assert r[k] > 0 and math.isfinite(r[k]), (k, r[k])
  assert 'gflop_per_step' in benchmark.format_result(r)


def test_compare_table_with_variants_and_torch():
  configs = benchmark.variants(smoke(), conv_impls=['matmul'], dtypes=['float32', 'bfloat16'])
  assert [(c.model.conv_impl, c.model.dtype) for c in configs] == [('matmul', 'float32'),
                                                                   ('matmul', 'bfloat16')]
  res = benchmark.compare(configs[:1], 'predict', steps=1, warmup=0, compare_torch=True,
                          matmul_peak=True)
  rows = res['rows']
  has_torch = torch_env.available()
  assert len(rows) == (2 if has_torch else 1)
  for r in rows:
    assert ROW_FIELDS <= set(r), ROW_FIELDS - set(r)
    assert r['step_s'] > 0 and len(r['step_times']) == 1
  assert res['peak_gflops'] > 0
  assert rows[0]['gflop_per_step'] > 0
  if has_torch:
    assert res['torch_note'] is None and rows[1]['name'].startswith('torch')
    assert rows[0]['vs_torch'] > 0 and rows[1]['vs_torch'] == pytest.approx(1.0)
  else:
    assert 'not installed' in res['torch_note']
  table = benchmark.format_table(res, 'smoke')
  assert 'vs torch' in table and 'jax conv_impl=matmul float32' in table
