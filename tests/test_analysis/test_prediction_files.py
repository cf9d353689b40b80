# Copyright (c) mmdet_yolor contributors. All rights reserved.
import contextlib
import io
import pickle

import coco_cases
import pytest
import torch
from pycocotools.coco import COCO

from mmdet_yolor.analysis.prediction_files import (evaluated_images,
                                                   keep_predictions,
                                                   kept_prediction_file,
                                                   load_predictions,
                                                   predictions_prefix)
from mmdet_yolor.errors import InputError


@pytest.fixture(scope='module')
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp('files')
    gt = coco_cases.ground_truth(num_images=6, crowd=False, seed=1)
    ann_file = coco_cases.write_json(gt, root / 'ann.json')
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(ann_file)
    return root, gt, ann_file, coco


def test_keep_predictions_sets_only_missing_coco_prefixes():
    coco = dict(type='CocoMetric', ann_file='a.json')
    other = dict(type='VOCMetric')
    kept = keep_predictions([coco, other], 'work/predictions/val')
    assert kept[0]['outfile_prefix'] == 'work/predictions/val'
    assert kept[1] == other and 'outfile_prefix' not in coco
    own = dict(coco, outfile_prefix='mine')
    assert keep_predictions(own, 'x') == own
    assert predictions_prefix('w', 'test') == 'w/predictions/test'


def test_kept_prediction_file(tmp_path):
    assert kept_prediction_file(str(tmp_path), 'val', 'bbox') is None
    (tmp_path / 'predictions').mkdir()
    (tmp_path / 'predictions' / 'val.bbox.json').write_text('[]')
    assert kept_prediction_file(str(tmp_path), 'val', 'bbox') == str(
        tmp_path / 'predictions' / 'val.bbox.json')


def test_pickle_of_test_py_reads_as_coco_results(case):
    """The pickle of tools/test.py --out (DumpDetResults): labels index the
    annotation file's categories, boxes are x1y1x2y2, masks RLE bytes."""
    root, gt, ann_file, coco = case
    rle = coco_cases._box_mask([1, 2, 10, 20])
    samples = [
        dict(
            img_id=2,
            pred_instances=dict(
                bboxes=torch.tensor([[1., 2., 11., 22.]]),
                scores=torch.tensor([0.5]),
                labels=torch.tensor([1]),
                masks=[dict(rle, counts=rle['counts'].encode())])),
        dict(
            img_id=3,
            pred_instances=dict(
                bboxes=torch.zeros((0, 4)),
                scores=torch.zeros(0),
                labels=torch.zeros(0, dtype=torch.long),
                masks=[])),
    ]
    path = root / 'test.pkl'
    path.write_bytes(pickle.dumps(samples))
    predictions = load_predictions(str(path), coco)
    assert predictions.image_ids == {2, 3}
    [detection] = predictions.detections
    assert detection['category_id'] == gt['categories'][1]['id']
    assert detection['bbox'] == [1., 2., 10., 20.]
    assert detection['segmentation'] == rle and predictions.has_masks
    assert set(predictions.results('segm')[0]) == {
        'image_id', 'category_id', 'score', 'segmentation'
    }


def write(root, name, results):
    return str(coco_cases.write_json(results, root / name))


def test_files_for_different_images_are_refused(case):
    root, gt, ann_file, coco = case
    base = load_predictions(
        write(root, 'b.json', coco_cases.predictions(gt, images=[1, 2, 3])),
        coco)
    pickled = coco_cases.write_empty_test_pickle([1, 2], root / 'y.pkl')
    yolor = load_predictions(pickled, coco)
    with pytest.raises(InputError) as error:
        evaluated_images(ann_file, coco, base, yolor, ['bbox'])
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith(f'{root}/b.json and {pickled} are predictions '
                              f'for different images: ')
    assert 'has image id 3, which' in message
    # a JSON lists the images with detections; the annotation file's are
    # evaluated, as CocoMetric does
    both_json = load_predictions(
        write(root, 'y.json', coco_cases.predictions(gt, images=[4])), coco)
    assert evaluated_images(ann_file, coco, base, both_json,
                            ['bbox']) == list(range(1, 7))


@pytest.mark.parametrize('field,value,what',
                         [('image_id', 99, 'image id 99'),
                          ('category_id', 42, 'category id 42')])
def test_ids_missing_from_the_annotation_file_are_refused(
        case, field, value, what):
    root, gt, ann_file, coco = case
    results = coco_cases.predictions(gt)
    results[0][field] = value
    path = write(root, f'{field}.json', results)
    good = load_predictions(write(root, 'good.json', results[1:]), coco)
    with pytest.raises(InputError) as error:
        evaluated_images(ann_file, coco, good, load_predictions(path, coco),
                         ['bbox'])
    assert str(error.value).startswith(
        f'{path} and {ann_file} differ: {what} of the predictions is not in '
        f'the annotation file')


def test_mask_ap_of_box_only_predictions_is_refused(case):
    root, gt, ann_file, coco = case
    boxes = load_predictions(
        write(root, 'boxes.json', coco_cases.predictions(gt)), coco)
    masks = load_predictions(
        write(root, 'masks.json', coco_cases.predictions(gt, masks=True)),
        coco)
    assert evaluated_images(ann_file, coco, masks, masks, ['segm'])
    with pytest.raises(InputError, match=f'{boxes.path} has no masks'):
        evaluated_images(ann_file, coco, masks, boxes, ['bbox', 'segm'])


@pytest.mark.parametrize('content,match', [
    ('{"images": []}', 'is not a COCO results JSON: expected a list'),
    ('not json', 'is not a COCO results JSON'),
    ('[{"image_id": 1, "bbox": [0, 0, 1, 1]}]', 'expected a list'),
])
def test_wrong_files_say_what_they_should_be(case, content, match):
    root, _, _, coco = case
    path = root / 'wrong.json'
    path.write_text(content)
    with pytest.raises(InputError, match=match):
        load_predictions(str(path), coco)
    with pytest.raises(InputError, match='does not exist'):
        load_predictions(str(root / 'missing.json'), coco)
