# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The inputs of a row: a batch of generated images with the annotations
that the config's training pipeline would load."""
import copy
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.models.data_preprocessors import MultiBranchDataPreprocessor
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from torch import nn

from ...config_edits import nested_dicts
from .settings import SweepSettings

# Keys of the branches of a semi-supervised batch (mmdet's SemiBaseDetector).
SEMI_BRANCHES = ('sup', 'unsup_teacher', 'unsup_student')


def image_shapes(cfg: Config,
                 settings: SweepSettings) -> List[Tuple[int, int]]:
    """``(height, width)`` of the generated images for ``cfg``: the fixed
    size its training pipeline resizes every image to
    (``Resize(keep_ratio=False)``, as SSD and YOLACT, whose heads assume
    it), else those of ``settings``."""
    for item in nested_dicts(cfg.get('train_dataloader')):
        scale = item.get('scale')
        if item.get('type') == 'Resize' and item.get('keep_ratio') is False \
                and isinstance(scale, (tuple, list)):
            return [(scale[1], scale[0])] * settings.batch_size
    return settings.image_shapes()


@dataclass
class InputSpec:
    """What the generated annotations of a model contain: what the loading
    transforms of its config's training pipeline give.

    Attributes:
        num_classes (int): Box labels are drawn below this.
        masks (bool): Instance masks (``LoadAnnotations(with_mask=True)``,
            ``LoadPanopticAnnotations``).
        semantic (tuple[int, int], optional): A semantic map (``with_seg``)
            whose background regions take labels in ``[low, high)`` (stuff
            classes; ``low == high``: ignored, 255); None for no map.
        proposals (bool): Precomputed proposals (``LoadProposals``).
        branches (tuple[str], optional): Branches of a semi-supervised
            training batch (``MultiBranchDataPreprocessor``).
    """
    num_classes: int
    masks: bool = False
    semantic: Optional[Tuple[int, int]] = None
    proposals: bool = False
    branches: Optional[Tuple[str, ...]] = None


# What the loading transforms of mmdet's pipelines give by default.
LOADING_DEFAULTS = {
    'LoadAnnotations': dict(with_mask=False, with_seg=False),
    'LoadPanopticAnnotations': dict(with_mask=True, with_seg=True),
}


def input_spec(cfg: Config, model: nn.Module) -> InputSpec:
    """Find what the annotations of ``cfg``'s model contain in a real run:
    the loading transforms of ``cfg.train_dataloader``, and the class
    counts of the model's heads."""
    loaders = [
        item for item in nested_dicts(cfg.get('train_dataloader'))
        if item.get('type') in LOADING_DEFAULTS
        or item.get('type') == 'LoadProposals'
    ]

    def loads(key: str) -> bool:
        return any(
            item.get(key, LOADING_DEFAULTS[item['type']][key])
            for item in loaders if item['type'] in LOADING_DEFAULTS)

    items = nested_dicts(cfg.model)
    semantic_heads = [
        item['semantic_head'] for item in items
        if isinstance(item.get('semantic_head'), dict)
    ]

    def ints(key: str, among: Sequence[dict] = items) -> List[int]:
        return [item[key] for item in among if isinstance(item.get(key), int)]

    box_heads = [
        item for item in items
        if not any(item is head for head in semantic_heads)
    ]
    things = ints('num_things_classes')
    num_classes = min(ints('num_classes', box_heads) + things, default=1)
    semantic = None
    if loads('with_seg'):
        stuff = [count for count in ints('num_stuff_classes') if count]
        if stuff:
            low = max(things, default=num_classes)
            semantic = (low, low + max(stuff))
        else:
            high = max(ints('num_classes', semantic_heads), default=0)
            semantic = (num_classes, max(high, num_classes))
    branches = (
        SEMI_BRANCHES if isinstance(model.data_preprocessor,
                                    MultiBranchDataPreprocessor) else None)
    return InputSpec(
        num_classes,
        masks=loads('with_mask'),
        semantic=semantic,
        proposals=any(item['type'] == 'LoadProposals' for item in loaders),
        branches=branches)


def _ellipse(height: int, width: int, box: np.ndarray) -> np.ndarray:
    """A filled ellipse inscribed in ``box`` (x1, y1, x2, y2)."""
    ys, xs = np.ogrid[:height, :width]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    return ((xs + 0.5 - cx) / rx)**2 + ((ys + 0.5 - cy) / ry)**2 <= 1


def generate_samples(spec: InputSpec, shapes: Sequence[Tuple[int, int]],
                     settings: SweepSettings) -> dict:
    """A batch as mmdet's ``PackDetInputs`` and ``pseudo_collate`` give it:
    uint8 images with objects painted on a smooth background, their boxes
    (``HorizontalBoxes``, 6-80% of the short side, log-uniform, aspect
    1:2 to 2:1), labels and empty ignored instances, and, as ``spec`` asks,
    instance masks (``BitmapMasks``, ellipses), a semantic map
    (``gt_sem_seg``: objects by label, background by stuff regions),
    proposals (jittered boxes and random ones), or the branches of a
    semi-supervised batch. ``shapes`` are the ``(height, width)`` of the
    images; ``settings`` give the number of objects and the seed.
    """
    rng = np.random.RandomState(settings.seed)
    inputs, samples = [], []
    for index, (height, width) in enumerate(shapes):
        count = max(1, settings.objects - 2 * index)
        scale = np.exp(rng.uniform(np.log(0.06), np.log(0.8), count))
        aspect = np.exp(rng.uniform(np.log(0.5), np.log(2), count))
        sizes = np.stack([aspect**0.5, aspect**-0.5], 1) * scale[:, None]
        sizes = np.minimum(sizes * min(height, width),
                           (0.95 * width, 0.95 * height))
        corners = rng.uniform(0, 1, (count, 2)) * ((width, height) - sizes)
        boxes = np.concatenate([corners, corners + sizes],
                               1).astype(np.float32)
        labels = rng.randint(0, spec.num_classes, count)
        masks = np.stack([_ellipse(height, width, box) for box in boxes])

        background = rng.uniform(0, 255, (3, 1, 1)) + rng.normal(
            0, 20,
            (3, height // 16 + 1, width // 16 + 1)).repeat(16, 1).repeat(
                16, 2)[:, :height, :width]
        image = background
        for mask in masks:
            image = np.where(mask, rng.uniform(0, 255, (3, 1, 1)), image)
        noise = rng.normal(0, 8, image.shape)
        inputs.append(
            torch.from_numpy(np.clip(image + noise, 0, 255).astype(np.uint8)))

        sample = DetDataSample(
            metainfo=dict(
                img_id=index,
                img_path=f'<generated {index}>',
                ori_shape=(height, width),
                img_shape=(height, width),
                scale_factor=(1.0, 1.0),
                flip=False,
                flip_direction=None,
                # CenterNet/CornerNet test-time crop borders: none
                border=np.array([0, height, 0, width], dtype=np.float32),
                # semi-supervised branches: no geometric augmentation
                homography_matrix=np.eye(3, dtype=np.float32)))
        sample.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.from_numpy(boxes)),
            labels=torch.from_numpy(labels).long())
        sample.ignored_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.zeros(0, 4)),
            labels=torch.zeros(0, dtype=torch.long))
        if spec.masks:
            sample.gt_instances.masks = BitmapMasks(
                masks.astype(np.uint8), height, width)
            sample.ignored_instances.masks = BitmapMasks(
                np.zeros((0, height, width), np.uint8), height, width)
        if spec.semantic is not None:
            low, high = spec.semantic
            columns = np.linspace(0, high - low, width, endpoint=False)
            sem_seg = np.broadcast_to(
                low + columns.astype(np.int64) if high > low else 255,
                (height, width)).copy()
            for mask, label in zip(masks, labels):
                sem_seg[mask] = label
            sample.gt_sem_seg = PixelData(
                sem_seg=torch.from_numpy(sem_seg[None]).long(),
                metainfo=dict(ignore_index=255))
        if spec.proposals:
            jitter = rng.normal(0, 0.05, (50, count, 4)) * np.tile(sizes, 2)
            around = (boxes[None] + jitter).reshape(-1, 4)
            random = np.sort(
                rng.uniform(0, 1, (150, 2, 2)) * (width, height), 1)
            proposals = np.concatenate([around, random.reshape(-1, 4)])
            proposals = np.clip(proposals, 0, (width, height, width, height))
            sample.proposals = InstanceData(
                bboxes=torch.from_numpy(proposals).float(),
                scores=torch.from_numpy(rng.uniform(0, 1,
                                                    len(proposals))).float())
        samples.append(sample)
    if spec.branches is None:
        return dict(inputs=inputs, data_samples=samples)
    return dict(
        inputs={branch: list(inputs)
                for branch in spec.branches},
        data_samples={
            branch: copy.deepcopy(samples)
            for branch in spec.branches
        })


def eval_batch(batch: dict) -> dict:
    """The test-mode batch of a training ``batch`` (the ``sup`` branch of a
    semi-supervised one)."""
    if isinstance(batch['inputs'], dict):
        return dict(
            inputs=batch['inputs']['sup'],
            data_samples=batch['data_samples']['sup'])
    return batch
