# Copyright (c) mmdet_yolor contributors. All rights reserved.
import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.predictions import (FIGURE_DPI, GROUND_TRUTH,
                                              PANEL_INCHES, build_val_dataset,
                                              fixed_indices, ground_truth,
                                              plot_predictions,
                                              predictions_figure)
from mmdet_yolor.datasets import CLASSES

from yolor_testing import tiny_fcos_config


def test_fixed_indices_spread_over_the_dataset():
    assert fixed_indices(range(100), 4) == [0, 33, 66, 99]
    assert fixed_indices(range(3), 4) == [0, 1, 2]
    assert fixed_indices(range(10), 1) == [0]


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """A tiny FCOS config and its YOLOR version on 4 generated validation
    images of 64 px, each with a checkpoint of its initial weights; every
    box scores above 0, so the untrained models detect. (Run them on 2
    images at least: the GroupNorm of the head cannot take the 1x1 P7 map
    of a single 64 px image.)"""
    root = tmp_path_factory.mktemp('predictions')
    models = {}
    baseline = tiny_fcos_config(str(root / 'data'), str(root / 'work'))
    baseline.model.test_cfg.score_thr = 0.
    for name, cfg in (('baseline', baseline), ('YOLOR', yolorize(baseline))):
        config = str(root / f'{name}.py')
        cfg.dump(config)
        checkpoint = str(root / f'{name}.pth')
        torch.manual_seed(0)
        torch.save(
            {
                'meta': dict(dataset_meta=dict(classes=CLASSES)),
                'state_dict': MODELS.build(cfg.model).state_dict()
            }, checkpoint)
        models[name] = (config, checkpoint)
    return models


def test_ground_truth_has_the_annotated_boxes(models):
    dataset = build_val_dataset(models['baseline'][0])
    assert len(dataset) == 4
    gt = ground_truth(dataset, 1)
    instances = dataset.get_data_info(1)['instances']
    assert gt.bboxes.tolist() == [i['bbox'] for i in instances]
    assert gt.labels.tolist() == [i['bbox_label'] for i in instances]


def test_predictions_side_by_side(models, tmp_path):
    figure = predictions_figure(models, num_images=2, score_thr=0.)
    grid = np.array(figure.axes).reshape(2, 3)
    assert [axes.get_title() for axes in grid[0]] == \
        [GROUND_TRUTH, 'baseline', 'YOLOR']
    assert [axes.get_ylabel() for axes in grid[:, 0]] == \
        ['000000.png', '000003.png']  # the first and last image
    for row in grid:
        truth, *predictions = (axes.images[0].get_array() for axes in row)
        # 64 px images drawn at 6x
        assert truth.shape == (384, 384, 3)
        for axes, drawn in zip(row[1:], predictions):
            assert axes.get_xlabel().split()[1] == 'detections'
            assert int(axes.get_xlabel().split()[0]) > 0
            assert not np.array_equal(drawn, truth)

    out = tmp_path / 'predictions.png'
    plot_predictions(models, str(out), num_images=2, score_thr=0.)
    height, width = mmcv.imread(str(out)).shape[:2]
    # 3 columns and 2 rows of panels
    assert width == round(3 * PANEL_INCHES * FIGURE_DPI)
    assert height > 2 * PANEL_INCHES * FIGURE_DPI


def test_score_threshold_hides_detections(models):
    figure = predictions_figure({'baseline': models['baseline']},
                                num_images=2,
                                score_thr=1.)
    _, prediction, *_ = figure.axes
    assert prediction.get_xlabel() == '0 detections'
    # the image alone, enlarged
    path = build_val_dataset(
        models['baseline'][0]).get_data_info(0)['img_path']
    image = mmcv.imread(path, channel_order='rgb')
    np.testing.assert_array_equal(
        prediction.images[0].get_array(),
        mmcv.imrescale(image, 6, interpolation='nearest'))
