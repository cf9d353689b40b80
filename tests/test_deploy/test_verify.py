# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The checks of an export that need no export: the images it is checked
on, the one-to-one matching of detections, their verdict and the op-count
comparison. (ParityChecker runs exports: tests/test_deploy/
test_onnx_export.py.)"""
import json

import mmcv
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet_yolor.deploy.verify import (EMPTY_BOX_TOL, MAX_MASK_PROB_DIFF,
                                       MAX_SCORE_DIFF, MIN_BOX_IOU,
                                       MIN_MASK_IOU, DetectionParity,
                                       ImageCheck, OpComparison, box_agreement,
                                       dataset_images, match_detections)
from mmdet_yolor.errors import InputError


def test_dataset_images_reads_the_first_images_of_the_test_dataset(
        tiny_config):
    cfg = Config.fromfile(tiny_config(num_val=3, image_size=48))
    images = dataset_images(cfg, count=2)
    assert len(images) == 2
    for path, image in images:
        assert '/val/' in path
        assert image.shape == (48, 48, 3) and image.dtype.name == 'uint8'
        assert (image == mmcv.imread(path)).all()
    # the first ones, in the dataset's order; fewer if it has fewer
    everything = dataset_images(cfg, count=10)
    assert [p for p, _ in everything][:2] == [p for p, _ in images]
    assert len(everything) == 3


def coco_config(tmp_path, images):
    """A COCO test dataset of ``images`` (no files), as a config file."""
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'test.json').write_text(
        json.dumps(
            dict(
                images=images,
                annotations=[],
                categories=[dict(id=1, name='square')])))
    cfg = Config(
        dict(
            test_dataloader=dict(
                dataset=dict(
                    type='CocoDataset',
                    data_root=str(tmp_path),
                    ann_file='annotations/test.json',
                    data_prefix=dict(img='test/'),
                    metainfo=dict(classes=('square', )),
                    test_mode=True,
                    pipeline=[dict(type='LoadImageFromFile')]))))
    path = str(tmp_path / 'cfg.py')
    cfg.dump(path)
    return Config.fromfile(path)


def test_an_unreadable_test_dataset_tells_the_user_to_name_images(tmp_path):
    cfg = coco_config(tmp_path, [])
    cfg.test_dataloader.dataset.ann_file = 'annotations/missing.json'
    with pytest.raises(InputError) as error:
        dataset_images(cfg)
    message = str(error.value)
    assert message.startswith(
        f'cannot read the test dataset of {cfg.filename}')
    assert 'missing.json' in message
    assert message.endswith('name the images with --img')


def test_an_empty_test_dataset_tells_the_user_to_name_images(tmp_path):
    cfg = coco_config(tmp_path, [])
    with pytest.raises(InputError) as error:
        dataset_images(cfg)
    assert str(error.value) == (
        f'the test dataset of {cfg.filename} has no images; name the images '
        f'with --img')


def test_box_agreement_is_the_iou_of_every_pair():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 20., 10.]])
    other = torch.tensor([[0., 0., 10., 10.], [5., 0., 15., 10.],
                          [30., 30., 40., 40.]])
    agreement = box_agreement(boxes, other)
    assert agreement.shape == (2, 3)
    torch.testing.assert_close(agreement,
                               torch.tensor([[1., 1 / 3, 0.], [0.5, 0.5, 0.]]))


def test_empty_boxes_agree_where_their_corners_do():
    # clipped boxes without width, whose IoU is undefined
    empty = torch.tensor([[5., 5., 5., 9.]])
    near = torch.tensor([[5., 5., 5., 9. + EMPTY_BOX_TOL / 2]])
    far = torch.tensor([[5., 5., 5., 9. + 2 * EMPTY_BOX_TOL]])
    assert box_agreement(empty, near).item() == 1.
    assert box_agreement(empty, far).item() == 0.
    # an empty box never agrees with one that has an area
    assert box_agreement(empty, torch.tensor([[5., 5., 6., 9.]])).item() == 0.


def detections(boxes, scores, labels, masks=None):
    instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float),
        scores=torch.tensor(scores),
        labels=torch.tensor(labels))
    if masks is not None:
        instances.masks = torch.tensor(masks)
    return instances


def test_matching_takes_boxes_one_to_one():
    reference = detections([[0, 0, 10, 10], [20, 20, 30, 40], [5, 5, 6, 5]],
                           [0.9, 0.8, 0.7], [1, 2, 0])
    # other order, float noise, an empty (clipped) box on both sides
    candidate = detections(
        [[20, 20, 30, 40.001], [5, 5, 6, 5], [0, 0, 10, 10]],
        [0.8001, 0.7, 0.9], [2, 0, 1])
    parity = match_detections(reference, candidate, score_thr=0.05)
    assert parity.passed and parity.matched == parity.compared == 3
    assert parity.min_iou > 0.9999
    assert parity.max_score_diff == pytest.approx(1e-4, abs=1e-6)


@pytest.mark.parametrize(
    'boxes, scores, labels',
    [
        ([[0, 0, 10, 10], [20, 20, 30, 41]], [0.9, 0.8], [1, 2]),  # box off
        ([[0, 0, 10, 10], [20, 20, 30, 40]], [0.9, 0.81], [1, 2]),  # score
        ([[0, 0, 10, 10], [20, 20, 30, 40]], [0.9, 0.8], [1, 3]),  # label
        ([[0, 0, 10, 10]], [0.9], [1]),  # missing
    ])
def test_matching_finds_each_difference(boxes, scores, labels):
    reference = detections([[0, 0, 10, 10], [20, 20, 30, 40]], [0.9, 0.8],
                           [1, 2])
    parity = match_detections(reference, detections(boxes, scores, labels),
                              0.05)
    assert not parity.passed
    assert parity.matched == 1 and parity.unmatched >= 1


def test_matching_excuses_detections_at_the_thresholds():
    reference = detections([[0, 0, 10, 10], [20, 20, 30, 40]], [0.9, 0.0505],
                           [1, 2])
    candidate = detections([[0, 0, 10, 10]], [0.9], [1])
    # the second one may score just below 0.05 on the other side
    assert match_detections(reference, candidate, 0.05).passed
    # with max_per_img detections kept, the last places were competed for
    reference = detections([[0, 0, 10, 10], [20, 20, 30, 40]], [0.9, 0.3],
                           [1, 2])
    candidate = detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.3],
                           [1, 0])
    assert not match_detections(reference, candidate, 0.05).passed
    assert match_detections(reference, candidate, 0.05, max_per_img=2).passed


def test_matching_compares_masks():
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 2:8, 2:8] = True
    shifted = torch.roll(mask, 1, dims=2)
    reference = detections([[0, 0, 10, 10]], [0.9], [1], mask)
    assert match_detections(reference,
                            detections([[0, 0, 10, 10]], [0.9], [1], mask),
                            0.05).min_mask_iou == 1.0
    parity = match_detections(
        reference, detections([[0, 0, 10, 10]], [0.9], [1], shifted), 0.05)
    assert parity.min_mask_iou == pytest.approx(30 / 42)
    assert not parity.passed


def test_matching_compares_mask_probabilities_where_both_sides_have_them():
    probs = torch.rand(1, 6, 6)
    reference = detections([[0, 0, 10, 10]], [0.9], [1])
    candidate = detections([[0, 0, 10, 10]], [0.9], [1])
    reference.mask_probs, candidate.mask_probs = probs, probs + 0.01
    parity = match_detections(reference, candidate, 0.05)
    assert parity.min_mask_iou is None
    assert parity.max_mask_prob_diff == pytest.approx(0.01, abs=1e-6)
    assert not parity.passed


def parity(**kwargs):
    fields = dict(
        score_thr=0.05,
        compared=3,
        matched=3,
        unmatched=0,
        min_iou=1.0,
        max_score_diff=0.0)
    fields.update(kwargs)
    return DetectionParity(**fields)


@pytest.mark.parametrize('fields, passed', [
    (dict(), True),
    (dict(unmatched=1), False),
    (dict(min_iou=MIN_BOX_IOU), True),
    (dict(min_iou=MIN_BOX_IOU - 1e-3), False),
    (dict(max_score_diff=MAX_SCORE_DIFF), True),
    (dict(max_score_diff=2 * MAX_SCORE_DIFF), False),
    (dict(min_mask_iou=MIN_MASK_IOU - 0.01), False),
    (dict(min_mask_iou=MIN_MASK_IOU), True),
])
def test_a_parity_passes_within_every_tolerance(fields, passed):
    assert parity(**fields).passed is passed


def test_mask_probabilities_decide_over_the_binary_mask_iou():
    # near the 0.5 threshold float noise flips pixels: probabilities decide
    assert parity(min_mask_iou=0.5, max_mask_prob_diff=0.0).passed
    assert not parity(
        min_mask_iou=1.0, max_mask_prob_diff=2 * MAX_MASK_PROB_DIFF).passed


def test_a_parity_line_reports_matches_and_worst_differences():
    line = parity(
        matched=2, unmatched=1, min_iou=0.995, max_score_diff=2e-4).format()
    assert line == ('2/3 detections matched (score > 0.05, 1 unmatched), '
                    'min IoU 0.99500, max score diff 2.0e-04')
    masks = parity(min_mask_iou=0.98765, max_mask_prob_diff=3e-4).format()
    assert masks.endswith(', max mask prob diff 3.0e-04, min mask IoU 0.9877')


def test_an_image_check_passes_on_the_graph_parity_alone():
    check = ImageCheck('a.jpg', parity(), parity(unmatched=2))
    assert check.passed
    lines = check.format().split('\n')
    assert lines[0].startswith('a.jpg: ONNX Runtime vs PyTorch: 3/3')
    assert lines[0].endswith('[ok]')
    assert 'reported only' in lines[1] and '2 unmatched' in lines[1]
    assert not ImageCheck('a.jpg', parity(unmatched=1), parity()).passed
    assert ImageCheck('a.jpg', parity(unmatched=1),
                      parity()).format().split('\n')[0].endswith('[FAILED]')


def test_extra_ops_explained_by_the_kept_implicit_layers():
    comparison = OpComparison(
        ops=dict(Conv=10, Add=4, Mul=1),
        baseline=dict(Conv=10, Add=2),
        kept=dict(Add=2, Mul=1, Concat=0))
    assert comparison.extra == dict(Add=2, Mul=1)
    assert comparison.explained
    text = comparison.format()
    assert 'extra ops: Add +2, Mul +1' in text and text.endswith('[ok]')
    assert '  total' in text and '+3' in text


def test_unexplained_ops_fail_the_comparison():
    missing = OpComparison(
        ops=dict(Conv=9), baseline=dict(Conv=10), kept=dict())
    assert missing.extra == dict(Conv=-1) and not missing.explained
    assert missing.format().endswith('[FAILED]')
    same = OpComparison(ops=dict(Conv=10), baseline=dict(Conv=10), kept={})
    assert same.extra == {} and same.explained
    assert 'extra ops: none; kept implicit layers leave none [ok]' in \
        same.format()
