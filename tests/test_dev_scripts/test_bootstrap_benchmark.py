# Copyright (c) mmdet_yolor contributors. All rights reserved.
from collections import Counter

from yolor_dev.bootstrap_benchmark import (CaseSettings, run_benchmark,
                                           synthetic_case, write_case)


def test_synthetic_case_has_the_asked_size():
    settings = CaseSettings(images=50, categories=6, detections=20)
    gt, (baseline, yolor) = synthetic_case(settings)
    assert len(gt['images']) == 50 and len(gt['categories']) == 6
    for results in (baseline, yolor):
        per_image = Counter(r['image_id'] for r in results)
        # up to 20 an image, more only where an image has more objects
        objects = Counter(a['image_id'] for a in gt['annotations'])
        assert all(count <= max(20, objects[image] + 1)
                   for image, count in per_image.items())
        assert min(per_image.values()) >= 1
    areas = [a['area'] for a in gt['annotations']]
    # all three of COCO's area ranges
    assert min(areas) < 32**2 and max(areas) > 96**2


def test_benchmark_times_the_stages_and_matches_pycocotools(tmp_path):
    files = write_case(
        CaseSettings(images=40, categories=4, detections=15), str(tmp_path))
    result = run_benchmark(*files, resamples=30)
    assert set(result['seconds']) == {'load', 'match', 'resample', 'command'}
    assert result['max_difference'] < 1e-9
    assert result['metrics']['bbox_mAP']['ci95'] is not None
