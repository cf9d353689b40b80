# Copyright (c) mmdet_yolor contributors. All rights reserved.
import subprocess
import sys

from mmdet.registry import DATASETS

from mmdet_yolor.datasets import CLASSES

TINY = dict(num_train=3, num_val=2, image_size=96, seed=0)


def build(root, split='val', generator=TINY):
    return DATASETS.build(
        dict(
            type='ShapesDataset',
            data_root=str(root),
            ann_file=f'annotations/instances_{split}.json',
            data_prefix=dict(img=f'{split}/'),
            generator=generator,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='PackDetInputs')
            ]))


def test_generates_on_first_use_and_reads_as_coco(tmp_path):
    root = tmp_path / 'shapes'
    assert not root.exists()
    dataset = build(root)
    assert (root / 'meta.json').is_file()
    assert dataset.metainfo['classes'] == CLASSES
    assert len(dataset) == 2
    sample = dataset[0]['data_samples']
    assert len(sample.gt_instances.bboxes) == len(sample.gt_instances.masks)
    assert sample.gt_instances.masks.height == 96


def test_second_use_does_not_regenerate(tmp_path):
    root = tmp_path / 'shapes'
    build(root)
    stamp = (root / 'meta.json').stat().st_mtime_ns
    build(root, split='train')
    assert (root / 'meta.json').stat().st_mtime_ns == stamp


def test_module_command_line(tmp_path):
    out = tmp_path / 'cli'
    result = subprocess.run([
        sys.executable, '-m', 'mmdet_yolor.datasets', '--out-dir',
        str(out), '--num-train', '2', '--num-val', '1', '--image-size', '64'
    ],
                            capture_output=True,
                            text=True,
                            check=True)
    assert 'train: 2 images' in result.stdout
    assert 'RuntimeWarning' not in result.stderr
    assert (out / 'annotations' / 'instances_val.json').is_file()
