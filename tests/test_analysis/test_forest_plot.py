# Copyright (c) mmdet_yolor contributors. All rights reserved.
import numpy as np
import pytest

from mmdet_yolor.analysis.compare import Comparison
from mmdet_yolor.analysis.forest_plot import forest_figure, forest_lines
from mmdet_yolor.analysis.image_bootstrap import MetricDelta
from mmdet_yolor.analysis.seed_statistics import seed_delta


def comparison(detector, boxes, masks=None, images=True):
    """A comparison with paired seeds: (baseline, YOLOR) box mAP a seed."""
    result = Comparison(detector, detector.lower())
    result.seed_deltas['bbox_mAP'] = seed_delta([
        (seed, b, y) for seed, (b, y) in enumerate(boxes)
    ])
    if masks:
        result.seed_deltas['segm_mAP'] = seed_delta([
            (seed, b, y) for seed, (b, y) in enumerate(masks)
        ])
    if images:
        for seed, (b, y) in enumerate(boxes):
            result.image_intervals[str(seed)] = {
                'bbox_mAP':
                MetricDelta(b, y, y - b, [y - b - 0.01, y - b + 0.01], 0.9)
            }
    return result


def test_one_line_per_detector_and_metric():
    comparisons = [
        comparison('FCOS', [(0.30, 0.32), (0.31, 0.31)]),
        comparison('Mask R-CNN', [(0.30, 0.32)], masks=[(0.2, 0.21)]),
        Comparison('ATSS', 'atss'),
    ]
    lines = forest_lines(comparisons)
    assert [label for label, _, _ in lines
            ] == ['FCOS\nbox AP', 'Mask R-CNN\nbox AP', 'Mask R-CNN\nmask AP']
    assert len(forest_lines(comparisons, ['segm_mAP'])) == 1


def test_figure_draws_every_interval_around_zero():
    figure = forest_figure(
        [comparison('FCOS', [(0.30, 0.33), (0.31, 0.315), (0.29, 0.31)])])
    axes = figure.axes[0]
    labels = [line.get_label() for line in axes.get_lines()]
    assert labels.count('95 % CI over images, per seed') == 1
    assert '95 % CI over seeds (Student t)' in labels
    drawn = [line for line in axes.get_lines() if line.get_linewidth() == 5]
    seeds = drawn[0].get_xdata()
    expected = comparison('FCOS', [(0.30, 0.33), (0.31, 0.315),
                                   (0.29, 0.31)]).seed_deltas['bbox_mAP'].ci95
    np.testing.assert_allclose(seeds, [v * 100 for v in expected])
    # the line of no difference
    assert any(list(line.get_xdata()) == [0, 0] for line in axes.get_lines())


def test_nothing_paired_is_an_error():
    with pytest.raises(ValueError, match='no comparison has paired'):
        forest_figure([Comparison('ATSS', 'atss')])
