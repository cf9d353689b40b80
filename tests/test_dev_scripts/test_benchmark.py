# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json

from mmdet_yolor import yolorize
from yolor_dev.benchmark import (BASELINE, FOLDED, YOLOR, BenchmarkSettings,
                                 VariantResult, dump_json, format_table,
                                 run_benchmark, variant_configs)
from yolor_dev.compiling import CompileCounts

from yolor_testing import tiny_fcos_config

SETTINGS = BenchmarkSettings(image_size=64, warmup=1, repeats=2)


def test_variant_configs_from_either_side(tmp_path):
    cfg = tiny_fcos_config(str(tmp_path / 'data'), str(tmp_path / 'work'))
    from_baseline = variant_configs(cfg, 'foldable')
    assert from_baseline[BASELINE] is cfg
    assert from_baseline[YOLOR].model.neck.placement == 'output_convs'
    from_yolor = variant_configs(yolorize(cfg))
    assert from_yolor[BASELINE].model == cfg.model


def test_run_benchmark_measures_three_variants(tmp_path):
    cfg = tiny_fcos_config(str(tmp_path / 'data'), str(tmp_path / 'work'))
    results = run_benchmark(cfg, SETTINGS)
    assert [r.name for r in results] == [BASELINE, YOLOR, FOLDED]
    baseline, yolor, folded = results
    # per-level head implicits of FCOS stay after folding, the rest go
    assert baseline.params < folded.params < yolor.params
    assert all(r.flops > 0 and r.inference_ms > 0 for r in results)
    assert baseline.train_step_ms > 0 and yolor.train_step_ms > 0
    assert baseline.peak_memory_mib > 100  # a process with torch loaded
    assert folded.train_step_ms is None and folded.peak_memory_mib is None
    path = tmp_path / 'bench.json'
    dump_json(results, SETTINGS, str(path))
    written = json.loads(path.read_text())
    assert written['settings']['image_size'] == 64
    assert [r['name'] for r in written['results']] == [BASELINE, YOLOR, FOLDED]


def test_compile_times_the_compiled_models_in_the_same_run(tmp_path):
    cfg = tiny_fcos_config(str(tmp_path / 'data'), str(tmp_path / 'work'))
    settings = BenchmarkSettings(
        image_size=64, warmup=1, repeats=2, compile='eager')
    results = run_benchmark(cfg, settings)
    for result in results:
        assert result.network_ms > 0 and result.compiled_network_ms > 0
        counts = result.compile_counts
        # FCOS's network is one graph, in YOLOR form too
        assert (counts.frames, counts.graph_breaks, counts.recompiles) == \
            (1, 0, 0)
        assert counts.max_error <= 1e-4
    assert 'network compiled' in format_table(results)


def test_format_table_gives_ratios_to_the_baseline():
    results = [
        VariantResult(BASELINE, 1000, 2e9, 10.0, 100.0, 500.0),
        VariantResult(YOLOR, 1010, 2e9, 10.5, 102.0, 505.0),
        VariantResult(FOLDED, 1000, 2e9, 10.1, None, None),
    ]
    assert format_table(results).splitlines() == [
        '| model | params | GFLOPs | inference | train step | peak memory |',
        '| :-- | --: | --: | --: | --: | --: |',
        '| baseline | 1,000 | 2.00 | 10.0 ms | 100.0 ms | 500.0 MiB |',
        '| YOLOR | 1,010 (1.010x) | 2.00 (1.000x) | 10.5 ms (1.050x) | '
        '102.0 ms (1.020x) | 505.0 MiB (1.010x) |',
        '| YOLOR folded | 1,000 (1.000x) | 2.00 (1.000x) | 10.1 ms (1.010x) '
        '| - | - |',
    ]
    counts = CompileCounts(
        frames=3, graph_breaks=2, recompiles=0, max_error=0.0)
    for result, ms in zip(results, (8.0, 8.4, 8.0)):
        result.network_ms = ms
        result.compiled_network_ms = ms / 2
        result.compile_counts = counts
    assert format_table(results).splitlines()[2:] == [
        '| baseline | 1,000 | 2.00 | 10.0 ms | 100.0 ms | 500.0 MiB | '
        '8.0 ms | 4.0 ms | 3 / 2 / 0 |',
        '| YOLOR | 1,010 (1.010x) | 2.00 (1.000x) | 10.5 ms (1.050x) | '
        '102.0 ms (1.020x) | 505.0 MiB (1.010x) | 8.4 ms (1.050x) | '
        '4.2 ms (1.050x) | 3 / 2 / 0 |',
        '| YOLOR folded | 1,000 (1.000x) | 2.00 (1.000x) | 10.1 ms (1.010x) '
        '| - | - | 8.0 ms (1.000x) | 4.0 ms (1.000x) | 3 / 2 / 0 |',
    ]


def test_benchmark_script(run_tool, tiny_config, tmp_path):
    result = run_tool(
        '.dev_scripts/benchmark.py',
        tiny_config(),
        '--yolor',
        'foldable',
        '--image-size',
        '64',
        '--warmup',
        '0',
        '--repeats',
        '1',
        '--json',
        'bench.json',
        cwd=tmp_path)
    rows = result.stdout.strip().splitlines()
    # only the table: mmengine's per-parameter init messages are silenced
    assert all(row.startswith('| ') for row in rows), rows[:3]
    assert [row.split(' | ')[0] for row in rows[2:]
            ] == ['| baseline', '| YOLOR', '| YOLOR folded']
    # the foldable placement folds back to the baseline's parameters
    assert rows[4].split(' | ')[1] == rows[2].split(' | ')[1] + ' (1.000x)'
    results = json.loads((tmp_path / 'bench.json').read_text())['results']
    assert results[0]['params'] == results[2]['params']
