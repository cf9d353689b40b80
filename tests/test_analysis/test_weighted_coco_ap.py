# Copyright (c) mmdet_yolor contributors. All rights reserved.
import coco_cases
import numpy as np
import pytest
from coco_cases import coco_of, reference_stats

from mmdet_yolor.analysis.image_bootstrap import resample_weights
from mmdet_yolor.analysis.prediction_files import PredictionSet
from mmdet_yolor.analysis.weighted_coco_ap import (AP_STATS, MMDET_MAX_DETS,
                                                   WeightedCocoAP, coco_eval)


def full_set(weighted: WeightedCocoAP):
    values = weighted.evaluate(np.ones((1, weighted.num_images), dtype=int))
    return np.array([values[name][0] for name, *_ in AP_STATS])


@pytest.fixture(scope='module')
def crowd_case():
    """Crowd regions, every area range, an image without objects, a
    category without any, duplicates and ties in score."""
    gt = coco_cases.ground_truth(num_images=30, crowd=True)
    assert any(a['iscrowd'] for a in gt['annotations'])
    return gt, coco_of(gt)


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
@pytest.mark.parametrize('max_dets', [(1, 10, 100), MMDET_MAX_DETS, (1, 2, 3)])
def test_full_set_equals_pycocotools_with_crowd_and_ignored_regions(
        crowd_case, iou_type, max_dets):
    gt, coco = crowd_case
    results = coco_cases.predictions(gt, seed=1, masks=iou_type == 'segm')
    # more detections than the smaller maxDets on one image
    results += [dict(r, score=0.01) for r in results if r['image_id'] == 2] * 3
    image_ids = sorted(coco.getImgIds())
    weighted = WeightedCocoAP(
        coco_eval(coco, PredictionSet('x', results), iou_type, image_ids,
                  max_dets))
    expected = reference_stats(coco, results, iou_type, image_ids, max_dets)
    np.testing.assert_allclose(
        full_set(weighted), expected, rtol=0, atol=1e-12)
    assert (expected > 0).sum() >= 5


def test_weights_equal_pycocotools_on_the_resampled_images(crowd_case):
    """A resample equals pycocotools on a dataset that holds each image as
    often as the resample draws it (distinct scores: no ties whose order
    the copies could change)."""
    gt, coco = crowd_case
    rng = np.random.default_rng(5)
    results = [
        dict(r, score=float(rng.uniform()))
        for r in coco_cases.predictions(gt, seed=2)
    ]
    image_ids = sorted(coco.getImgIds())
    weighted = WeightedCocoAP(
        coco_eval(coco, PredictionSet('x', results), 'bbox', image_ids))
    weights = resample_weights(len(image_ids), 4, seed=3)
    values = weighted.evaluate(weights)
    for row in weights:
        copies = dict(categories=gt['categories'], images=[], annotations=[])
        copied = []
        for image_id, count in zip(image_ids, row):
            for _ in range(count):
                new_id = len(copies['images']) + 1
                copies['images'].append(dict(coco.imgs[image_id], id=new_id))
                for annotation in coco.imgToAnns[image_id]:
                    copies['annotations'].append(
                        dict(
                            annotation,
                            image_id=new_id,
                            id=len(copies['annotations']) + 1))
                copied += [
                    dict(r, image_id=new_id) for r in results
                    if r['image_id'] == image_id
                ]
        copy_coco = coco_of(copies)
        expected = reference_stats(copy_coco, copied, 'bbox',
                                   sorted(copy_coco.getImgIds()),
                                   MMDET_MAX_DETS)
        index = np.flatnonzero((weights == row).all(axis=1))[0]
        ours = [values[name][index] for name, *_ in AP_STATS]
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
