# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json
import os
import os.path as osp

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO

from mmdet_yolor.datasets import (CLASSES, ensure_dataset, generate_dataset,
                                  metainfo, render_image, shapes)

TINY = dict(num_train=8, num_val=4, image_size=128)


def list_files(root):
    """Relative paths of all files under ``root``, sorted."""
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, files in os.walk(root)
        for f in files)


def read_bytes(root):
    files = list_files(root)
    contents = {}
    for f in files:
        with open(osp.join(root, f), 'rb') as fp:
            contents[f] = fp.read()
    return contents


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes') / 'data')
    generate_dataset(root, seed=0, **TINY)
    return root


def test_layout(tiny_root):
    files = list_files(tiny_root)
    assert 'meta.json' in files
    for split, num in (('train', 8), ('val', 4)):
        assert f'annotations/instances_{split}.json' in files
        for i in range(num):
            assert f'{split}/{i:06d}.png' in files
    with open(osp.join(tiny_root, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['format_version'] == shapes.FORMAT_VERSION
    assert meta['params'] == shapes.dataset_params(seed=0, **TINY)
    assert meta['classes'] == list(CLASSES)
    # No temporary directory is left next to the dataset.
    assert os.listdir(osp.dirname(tiny_root)) == ['data']


def test_determinism(tiny_root, tmp_path):
    same = str(tmp_path / 'same')
    generate_dataset(same, seed=0, **TINY)
    reference = read_bytes(tiny_root)
    assert read_bytes(same) == reference

    other = str(tmp_path / 'other')
    generate_dataset(other, seed=1, **TINY)
    other_bytes = read_bytes(other)
    assert other_bytes.keys() == reference.keys()
    for name in reference:
        if name != 'meta.json':
            assert other_bytes[name] != reference[name], name


def test_train_and_val_differ(tiny_root):
    for i in range(4):
        train = cv2.imread(osp.join(tiny_root, 'train', f'{i:06d}.png'))
        val = cv2.imread(osp.join(tiny_root, 'val', f'{i:06d}.png'))
        assert not np.array_equal(train, val)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_validity(tiny_root, split):
    coco = COCO(osp.join(tiny_root, 'annotations', f'instances_{split}.json'))
    cats = coco.loadCats(coco.getCatIds())
    assert [c['name'] for c in cats] == list(CLASSES)
    assert [c['id'] for c in cats] == list(range(1, len(CLASSES) + 1))

    images = coco.dataset['images']
    assert len({img['id'] for img in images}) == len(images)
    for img in images:
        image = cv2.imread(osp.join(tiny_root, split, img['file_name']))
        assert image is not None
        assert image.shape == (img['height'], img['width'], 3)

    anns = coco.dataset['annotations']
    assert len(anns) >= len(images)  # about 3.5 shapes per image
    assert len({ann['id'] for ann in anns}) == len(anns)
    assert min(ann['id'] for ann in anns) >= 1
    for ann in anns:
        assert ann['category_id'] in coco.cats
        assert ann['image_id'] in coco.imgs
        assert ann['iscrowd'] == 0
        assert isinstance(ann['segmentation']['counts'], str)
        mask = mask_util.decode(coco.annToRLE(ann))
        assert mask.shape == (128, 128)
        assert np.count_nonzero(mask) == ann['area'] >= 40
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann['bbox']
        assert (xs.min(), ys.min()) == (x, y)
        assert (xs.max() + 1, ys.max() + 1) == (x + w, y + h)


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_ground_truth_scores_perfect_map(tiny_root, iou_type):
    from pycocotools.cocoeval import COCOeval
    coco = COCO(osp.join(tiny_root, 'annotations', 'instances_val.json'))
    # loadRes reads a result with a bbox as a box result, so give segm
    # results their mask only.
    key = 'bbox' if iou_type == 'bbox' else 'segmentation'
    results = [{
        'image_id': ann['image_id'],
        'category_id': ann['category_id'],
        key: ann[key],
        'score': 1.0
    } for ann in coco.dataset['annotations']]
    evaluator = COCOeval(coco, coco.loadRes(results), iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)  # mAP@[.5:.95]


def test_visible_masks_do_not_overlap(tiny_root):
    coco = COCO(osp.join(tiny_root, 'annotations', 'instances_train.json'))
    for img_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        masks = np.stack([coco.annToMask(ann) for ann in anns])
        assert masks.sum(axis=0).max() <= 1


def test_render_image_occlusion_and_sizes():
    rng = np.random.Generator(np.random.PCG64(3))
    extents = []
    for _ in range(20):
        image, masks, labels = render_image(
            rng, image_size=160, max_objects=6, max_occlusion=0.3)
        assert image.shape == (160, 160, 3) and image.dtype == np.uint8
        assert masks.shape[1:] == (160, 160) and masks.dtype == bool
        assert len(masks) == len(labels) >= 1
        assert labels.min() >= 0 and labels.max() < len(CLASSES)
        for mask in masks:
            ys, xs = np.nonzero(mask)
            extents.append(max(np.ptp(xs), np.ptp(ys)) + 1)
    # Log-uniform in [12, 96]: both ends of the range are represented.
    assert min(extents) < 24 and max(extents) > 60


def test_ensure_dataset(tmp_path):
    root = str(tmp_path / 'data')
    assert ensure_dataset(root, seed=0, **TINY) == root
    sentinel = osp.join(root, 'sentinel')
    open(sentinel, 'w').close()
    meta_mtime = os.stat(osp.join(root, 'meta.json')).st_mtime_ns

    # Same parameters (defaults spelled out too): nothing is rewritten.
    ensure_dataset(root, seed=0, max_size=0.6 * 128, **TINY)
    assert osp.exists(sentinel)
    assert os.stat(osp.join(root, 'meta.json')).st_mtime_ns == meta_mtime

    # Other parameters: the dataset is replaced.
    ensure_dataset(root, seed=0, max_objects=3, **TINY)
    assert not osp.exists(sentinel)
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['params']['max_objects'] == 3
    assert os.listdir(tmp_path) == ['data']


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    root = str(tmp_path / 'data')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shapes, '_write_json', interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(root, num_train=2, num_val=1, image_size=64)
    assert os.listdir(tmp_path) == []


def test_refuses_to_replace_foreign_directory(tmp_path):
    (tmp_path / 'notes.txt').write_text('not a dataset')
    with pytest.raises(FileExistsError):
        generate_dataset(str(tmp_path), num_train=1, num_val=1)
    assert os.listdir(tmp_path) == ['notes.txt']


def test_invalid_params():
    with pytest.raises(ValueError):
        shapes.dataset_params(min_size=50, max_size=20)
    with pytest.raises(TypeError):
        shapes.dataset_params(num_test=3)


def test_metainfo():
    info = metainfo()
    assert info['classes'] == CLASSES
    assert len(info['palette']) == len(CLASSES)
    assert all(len(c) == 3 for c in info['palette'])


def test_mmdet_coco_dataset(tiny_root):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()

    ds = CocoDataset(
        data_root=tiny_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        metainfo=metainfo(),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ])
    assert len(ds) == 4
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 128, 128)
    gt = sample['data_samples'].gt_instances
    assert len(gt) > 0
    assert gt.bboxes.shape == (len(gt), 4)
    assert gt.masks.masks.shape == (len(gt), 128, 128)
    assert gt.labels.max() < len(CLASSES)
    # Boxes match the masks they come from (mmdet uses x2 = x + w).
    for box, mask in zip(gt.bboxes.tensor.numpy(), gt.masks.masks):
        ys, xs = np.nonzero(mask)
        expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        np.testing.assert_allclose(box, expected)


def test_cli(tmp_path, capsys):
    out = str(tmp_path / 'cli')
    argv = ['--out-dir', out, '--num-train', '2', '--num-val', '1']
    argv += ['--image-size', '64', '--seed', '5', '--min-size', '8']
    meta = shapes.main(argv)
    assert meta['params']['seed'] == 5
    assert meta['params']['min_size'] == 8.0
    assert list_files(out) == [
        'annotations/instances_train.json', 'annotations/instances_val.json',
        'meta.json', 'train/000000.png', 'train/000001.png', 'val/000000.png'
    ]
    printed = capsys.readouterr().out
    assert out in printed and 'train: 2 images' in printed
