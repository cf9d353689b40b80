# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json

import coco_cases
import pytest


@pytest.fixture
def files(tmp_path):
    gt = coco_cases.ground_truth(num_images=30, seed=2)
    third = [image['id'] for image in gt['images']][::3]
    baseline = coco_cases.predictions(gt, seed=3, masks=True)
    better = baseline + [
        dict(r, segmentation=coco_cases._box_mask(r['bbox']))
        for r in coco_cases.true_positives(gt, third)
    ]
    return dict(
        ann=coco_cases.write_json(gt, tmp_path / 'ann.json'),
        baseline=coco_cases.write_json(baseline, tmp_path / 'base.segm.json'),
        yolor=coco_cases.write_json(better, tmp_path / 'yolor.segm.json'),
        boxes=coco_cases.write_json(
            coco_cases.predictions(gt, seed=4), tmp_path / 'boxes.json'),
        other=coco_cases.write_json(
            coco_cases.predictions(
                coco_cases.ground_truth(num_images=40, seed=5)),
            tmp_path / 'other.json'))


def test_prints_the_table_and_writes_the_json(run_tool, tmp_path, files):
    result = run_tool(
        'analysis/bootstrap_ap.py',
        files['ann'],
        files['baseline'],
        files['yolor'],
        '--resamples',
        '200',
        '--seed',
        '3',
        '--iou-type',
        'bbox',
        'segm',
        '--json',
        'out.json',
        cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0] == ('Paired bootstrap over 30 images (200 resamples, '
                        'seed 3); AP in points.')
    names = [line.split(' | ')[0][2:] for line in lines[4:]]
    assert names == [
        f'{iou}_mAP{suffix}' for iou in ('bbox', 'segm')
        for suffix in ('', '_50', '_75', '_s', '_m', '_l')
    ]
    assert 'matching both files' in result.stderr
    out = json.loads((tmp_path / 'out.json').read_text())
    assert (out['images'], out['resamples'], out['seed']) == (30, 200, 3)
    box = out['metrics']['bbox_mAP']
    assert set(box) == {'baseline', 'yolor', 'delta', 'ci95', 'p_ahead'}
    assert box['ci95'][0] > 0 and 0 <= box['baseline'] <= 1
    assert out['metrics']['segm_mAP']['ci95'][0] > 0


@pytest.mark.parametrize('args,message', [
    (('ann', 'baseline', 'other'),
     'image id 31, 32, 33, 34, 35 and 5 more of the predictions is not in '
     'the annotation file'),
    (('ann', 'listed', 'boxes'), 'are predictions for different images'),
    (('ann', 'baseline', 'boxes', '--iou-type', 'segm'), 'has no masks'),
    (('ann', 'baseline', 'missing'), 'does not exist'),
])
def test_bad_input_is_one_line_and_writes_nothing(run_tool, tmp_path, files,
                                                  args, message):
    files['missing'] = str(tmp_path / 'missing.json')
    # a tools/test.py --out pickle of the first ten images only
    files['listed'] = coco_cases.write_empty_test_pickle(
        range(1, 11), tmp_path / 'listed.pkl')
    argv = [files.get(arg, arg) for arg in args]
    result = run_tool(
        'analysis/bootstrap_ap.py',
        *argv,
        '--json',
        'out.json',
        cwd=tmp_path,
        check=False)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith('error: ')
    assert message in error[0]
    assert not (tmp_path / 'out.json').exists()
    assert result.stdout == ''
