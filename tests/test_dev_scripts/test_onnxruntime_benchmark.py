# Copyright (c) mmdet_yolor contributors. All rights reserved.
from mmdet_yolor.package_data import get_config
from yolor_dev.onnxruntime_benchmark import (OnnxRuntimeResult, format_table,
                                             variant_models)


def test_table_gives_ratios_to_the_baseline():
    table = format_table([
        OnnxRuntimeResult('baseline', 1394, 7, 20.0),
        OnnxRuntimeResult('YOLOR folded', 1426, 7, 20.3),
        OnnxRuntimeResult('foldable folded', 1394, 7, 20.0),
    ])
    rows = table.splitlines()[2:]
    assert rows[0] == '| baseline | 1394 | 7 | 20.00 ms |'
    assert rows[1] == '| YOLOR folded | 1426 (+32) | 7 | 20.30 ms (1.015x) |'
    assert rows[2] == '| foldable folded | 1394 (+0) | 7 | 20.00 ms (1.000x) |'


def test_variants_share_the_baseline_weights():
    models = variant_models(get_config('demo/fcos_r18_fpn_6e_shapes.py'))
    assert list(models) == ['baseline', 'YOLOR folded', 'foldable folded']
    assert models['foldable folded'].report.complete
    assert not models['YOLOR folded'].report.complete
    baseline = models['baseline'].model.state_dict()
    foldable = models['foldable folded'].model.state_dict()
    # folding changed only the layers next to the implicits
    assert baseline.keys() == foldable.keys()
    same = [key for key in baseline if baseline[key].equal(foldable[key])]
    assert 'backbone.conv1.weight' in same and len(same) > len(baseline) // 2
