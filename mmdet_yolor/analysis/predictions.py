# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Detections of trained models on the same validation images, side by
side.

:func:`plot_predictions` runs each checkpoint on a few fixed images of the
validation set and draws one row per image: the ground truth, then one
column per model. The panels are drawn by mmdet's
:class:`~mmdet.visualization.DetLocalVisualizer` (boxes, masks, class names
and scores in the dataset's palette) and composed on matplotlib's Agg
canvas, without pyplot or a display.
"""
import math
import os.path as osp
from typing import Dict, List, Mapping, Sequence, Tuple

import mmcv
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mmdet.apis import init_detector
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.config import Config
from mmengine.dataset import BaseDataset, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch.nn import functional as F

# Detections below this score are not drawn (mmdet's demo default).
DEFAULT_SCORE_THR = 0.3
GROUND_TRUTH = 'ground truth'
# Size of one image in the figure, at FIGURE_DPI.
PANEL_INCHES = 3.2
FIGURE_DPI = 120


def build_val_dataset(config: str) -> BaseDataset:
    """Build the validation dataset of a training config (data root,
    annotations and test pipeline as the config has them)."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return DATASETS.build(cfg.val_dataloader.dataset)


def fixed_indices(dataset: BaseDataset, num_images: int) -> List[int]:
    """``num_images`` indices spread evenly over the dataset, the first and
    the last included: the same images for every model and every run."""
    count = min(num_images, len(dataset))
    return sorted({round(i) for i in np.linspace(0, len(dataset) - 1, count)})


@torch.no_grad()
def predict(config: str, checkpoint: str, dataset: BaseDataset,
            indices: Sequence[int]) -> List[DetDataSample]:
    """Run a trained model on images of a dataset.

    Args:
        config (str): The config that trained the checkpoint.
        checkpoint (str): The checkpoint to run.
        dataset (BaseDataset): The images (through its test pipeline).
        indices (Sequence[int]): Which images.

    Returns:
        list[DetDataSample]: One per image, with ``pred_instances`` in the
        coordinates of the original image.
    """
    model = init_detector(config, checkpoint, device='cpu')
    return model.test_step(pseudo_collate([dataset[i] for i in indices]))


def ground_truth(dataset: BaseDataset, index: int) -> InstanceData:
    """The annotated boxes of an image (ignored ones left out), in the
    coordinates of the original image."""
    instances = [
        instance for instance in dataset.get_data_info(index)['instances']
        if not instance.get('ignore_flag', 0)
    ]
    return InstanceData(
        bboxes=torch.tensor([i['bbox'] for i in instances],
                            dtype=torch.float32).reshape(-1, 4),
        labels=torch.tensor([i['bbox_label'] for i in instances],
                            dtype=torch.long))


def _enlarged(instances: InstanceData, factor: int,
              shape: Tuple[int, int]) -> InstanceData:
    """Boxes and masks of ``instances`` on their image enlarged ``factor``
    times to ``shape`` (height, width). Boxes are clipped to the last
    pixel: the visualizer warns about a box ending on the image border."""
    instances = instances.clone()
    if 'bboxes' in instances:
        bboxes = instances.bboxes * factor
        bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, shape[1] - 1)
        bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, shape[0] - 1)
        instances.bboxes = bboxes
    if 'masks' in instances and isinstance(instances.masks, torch.Tensor):
        instances.masks = F.interpolate(
            instances.masks[None].float(), scale_factor=factor,
            mode='nearest')[0].bool()
    return instances


def draw_instances(visualizer: DetLocalVisualizer, image: np.ndarray,
                   instances: InstanceData, factor: int) -> np.ndarray:
    """Draw instances on an image enlarged ``factor`` times (so that class
    names and scores stay legible on small images).

    Args:
        visualizer (DetLocalVisualizer): With the dataset's ``dataset_meta``.
        image (np.ndarray): The original RGB image.
        instances (InstanceData): Boxes (and masks) in the coordinates of
            the original image, with scores for predictions.
        factor (int): Integer enlargement of the image.

    Returns:
        np.ndarray: The drawn RGB image.
    """
    image = mmcv.imrescale(image, factor, interpolation='nearest')
    if not len(instances):
        return image
    # Drawn as ground truth: the same drawing as predictions (with the
    # scores when the instances have them) but without the score filter of
    # add_datasample, which needs scores; predictions come filtered.
    visualizer.add_datasample(
        'instances',
        image,
        DetDataSample(
            gt_instances=_enlarged(instances, factor, image.shape[:2])),
        draw_pred=False)
    return visualizer.get_image()


def predictions_figure(models: Mapping[str, Tuple[str, str]],
                       num_images: int = 4,
                       score_thr: float = DEFAULT_SCORE_THR,
                       min_size: int = 384) -> Figure:
    """Draw the detections of several models on the same validation
    images; the arguments are those of :func:`plot_predictions`.

    Returns:
        Figure: One row of axes per image; the columns are the ground truth,
        then the models in the order given, titled by their names.
    """
    dataset = build_val_dataset(next(iter(models.values()))[0])
    indices = fixed_indices(dataset, num_images)
    columns: Dict[str, List[InstanceData]] = {
        GROUND_TRUTH: [ground_truth(dataset, i) for i in indices]
    }
    for name, (config, checkpoint) in models.items():
        columns[name] = [
            sample.pred_instances[sample.pred_instances.scores > score_thr]
            for sample in predict(config, checkpoint, dataset, indices)
        ]
    visualizer = DetLocalVisualizer(line_width=2, alpha=0.8)
    visualizer.dataset_meta = dataset.metainfo
    figure = Figure(
        figsize=(PANEL_INCHES * len(columns),
                 (PANEL_INCHES + 0.4) * len(indices) + 0.3),
        layout='constrained')
    FigureCanvasAgg(figure)
    grid = figure.subplots(len(indices), len(columns), squeeze=False)
    for row, index in enumerate(indices):
        path = dataset.get_data_info(index)['img_path']
        image = mmcv.imread(path, channel_order='rgb')
        factor = max(1, math.ceil(min_size / min(image.shape[:2])))
        for axes, (title, instances) in zip(grid[row], columns.items()):
            axes.imshow(
                draw_instances(visualizer, image, instances[row], factor))
            axes.set_xticks([])
            axes.set_yticks([])
            count = len(instances[row])
            noun = 'object' if title == GROUND_TRUTH else 'detection'
            axes.set_xlabel(
                f'{count} {noun}{"" if count == 1 else "s"}', fontsize=8)
            if row == 0:
                axes.set_title(title, fontsize=10)
        grid[row, 0].set_ylabel(osp.basename(path), fontsize=8)
    figure.suptitle(
        f'validation images; detections with score > {score_thr}', fontsize=10)
    return figure


def plot_predictions(models: Mapping[str, Tuple[str, str]],
                     out: str,
                     num_images: int = 4,
                     score_thr: float = DEFAULT_SCORE_THR,
                     min_size: int = 384) -> None:
    """Draw the detections of trained models on the same validation images
    side by side into ``out``.

    The images are ``num_images`` fixed ones of the validation set of the
    first model's config (spread evenly over it). Each row is an image:
    its annotated boxes, then each model's detections above ``score_thr``.

    Args:
        models (Mapping[str, tuple[str, str]]): Column title (e.g.
            ``'FCOS baseline'``) to ``(config, checkpoint)`` of each model,
            in column order. The configs should share the validation set.
        out (str): Image file to write (format from its extension).
        num_images (int): Rows. Defaults to 4.
        score_thr (float): Detections with a lower score are not drawn.
            Defaults to 0.3.
        min_size (int): Small images are enlarged by an integer factor to
            at least this many pixels before drawing, so that class names
            and scores stay legible. Defaults to 384.
    """
    predictions_figure(models, num_images, score_thr, min_size).savefig(
        out, dpi=FIGURE_DPI)
