# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Sweep the installed mmdet's model zoo: which detectors YOLOR reaches.

For each config (by default one per algorithm folder of
``mmdet/.mim/configs``), the baseline trains a few steps on generated
inputs and predicts; if it runs here, its YOLOR form
(``yolorize(cfg, **YOLOR_PARTS['all'])``) trains the same steps on the same
inputs under checks, predicts, and is folded with
:func:`mmdet_yolor.fuse_implicit`, whose predictions must match the unfolded
ones. :func:`format_markdown` turns the rows into ``docs/model_zoo.md``.

What the checks rely on is the plugin's public API: what the implicits of a
model act on comes from :mod:`mmdet_yolor.models.introspection`.
"""
import copy
import datetime
import inspect
import json
import multiprocessing
import os
import os.path as osp
import platform
import re
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import mmcv
import mmdet
import numpy as np
import torch
from mmdet.models.data_preprocessors import MultiBranchDataPreprocessor
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS, PARAM_SCHEDULERS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.fileio import load
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves

from ..config_edits import nested_dicts, strip_pretrained
from ..deploy import fold_implicit, fuse_implicit
from ..errors import InputError
from ..models import (alignment_targets, implicit_layers, implicit_sites,
                      refined_layers)
from ..models.heads.prediction_layers import table_entry
from ..models.introspection import refined_levels
from ..models.layers.implicit import IMPLICIT_MODULE_PREFIX
from ..models.wrapping import init_parameter
from ..toggle import YOLOR_PARTS, yolorize
from .stages import replay_proposals

# Row statuses. ``ok`` and ``partial`` rows are covered: the YOLOR model
# trains, predicts and folds with every check passed; a ``partial`` one
# leaves some head family (or the features) without implicits.
OK = 'ok'
PARTIAL = 'partial'
REFUSED = 'refused'  # InputError: the plugin says it does not support this
CRASH = 'crash'  # any other exception on the YOLOR path
FAIL = 'fail'  # the YOLOR model ran but a check failed
NOT_RUNNABLE = 'n/a'  # the baseline cannot run on this machine
BASELINE_ERROR = 'baseline error'  # the baseline failed for another reason
TIMEOUT = 'timeout'  # the row's process was killed after its time limit
KILLED = 'killed'  # the row's process died without a result
COVERED = (OK, PARTIAL)
STATUSES = (OK, PARTIAL, REFUSED, CRASH, FAIL, BASELINE_ERROR, TIMEOUT, KILLED,
            NOT_RUNNABLE)

# Folders of mmdet/.mim/configs holding no algorithm of their own.
NOT_ALGORITHM_FOLDERS = {
    '_base_': 'base configs that the algorithm configs inherit',
    'common': 'dataset and schedule settings only',
    'misc': 'Detectron2 checkpoint-conversion configs',
    'legacy_1.x': 'mmdet 1.x checkpoint-compatibility configs',
}

# The default config of a folder is the first model of its metafile.yml
# (mmdet's canonical model of the folder), except where that model misses
# the folder's point or is much heavier than a sibling with the same heads.
DEFAULT_CONFIGS = {
    # the metafile's first is a Fast R-CNN reading precomputed proposals:
    # no Cascade RPN head in the model
    'cascade_rpn': 'cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py',
    # the metafile's (or the name order's) first is the neckless C4 variant,
    # whose RoI head runs ResNet's last stage on every RoI; the FPN one is
    # the usual baseline
    'faster_rcnn': 'faster-rcnn_r50_fpn_1x_coco.py',
    'pascal_voc': 'faster-rcnn_r50_fpn_1x_voc0712.py',
    # no metafile; R-50 rather than the name order's first, R-101
    'fast_rcnn': 'fast-rcnn_r50_fpn_1x_coco.py',
    # the same heads on R-50 instead of Swin-S / R-101
    'mask2former': 'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
    'tood': 'tood_r50_fpn_1x_coco.py',
    # no metafile; the name order's first, a Cascade R-CNN over V3Det's
    # 13,204 classes, predicts for tens of minutes on CPU
    'v3det': 'faster_rcnn_r50_fpn_8x4_sample1e-3_mstrain_v3det_2x.py',
}

# Share of the predictions (and proposals) folding must keep: float rounding
# may flip near-ties at a top-k or NMS cut, a wrong fold changes them all.
MIN_AGREEMENT = 0.95
SYNC_NORMS = ('SyncBN', 'MMSyncBN', 'NaiveSyncBN', 'TorchSyncBN')
# Keys of the branches of a semi-supervised batch (mmdet's SemiBaseDetector).
SEMI_BRANCHES = ('sup', 'unsup_teacher', 'unsup_student')


@dataclass
class SweepSettings:
    """How each config is exercised.

    Attributes:
        image_size (int): Long side of the generated images. The batch
            alternates landscape and portrait images of aspect 4:3, as in
            COCO. Defaults to 448.
        batch_size (int): Images per batch. Defaults to 2.
        steps (int): Training steps of each variant. Defaults to 2.
        objects (int): Objects in the first image; the others get fewer.
            Defaults to 8.
        seed (int): Seed of the generated inputs and of the models'
            initialisation. Defaults to 0.
        timeout (float): Seconds a row may take when run in its own process
            (:func:`run_sweep` with ``isolated=True``). Defaults to 1800.
    """
    image_size: int = 448
    batch_size: int = 2
    steps: int = 2
    objects: int = 8
    seed: int = 0
    timeout: float = 1800

    def image_shapes(self) -> List[Tuple[int, int]]:
        """``(height, width)`` of each image of a batch (multiples of 8)."""
        long = self.image_size
        short = int(round(long * 0.75 / 8)) * 8
        return [(short, long) if i % 2 == 0 else (long, short)
                for i in range(self.batch_size)]


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
class ConfigSpec:
    """One config of the installed mmdet's zoo."""
    folder: str
    name: str

    @property
    def path(self) -> str:
        """The config file. (``mmengine.hub.get_config`` reads the same file
        from ``mmdet::<folder>/<name>``, but refuses the ``+`` of
        ``gn+ws``.)"""
        return osp.join(mmdet_config_dir(), self.folder, self.name)


@dataclass
class SweepRow:
    """The outcome of one config.

    Attributes:
        folder (str): Algorithm folder of mmdet's configs.
        config (str): Config file name.
        status (str): One of :data:`STATUSES`.
        reason (str): Why the row is not ``ok``: the refusal message, the
            exception, the failed checks, the uncovered head families or
            why the baseline cannot run here.
        fa_sites (list[str]): Modules holding feature-alignment implicits
            (the path before ``.implicit_alignment``).
        pr_sites (dict[str, int]): Refined prediction layers per head
            family.
        uncovered (list[str]): Head families with prediction layers but no
            implicits.
        folded (tuple[int, int], optional): Implicit layers that
            ``fuse_implicit`` folded, and all of them.
        agreement (float, optional): Share of the predictions that folding
            kept (:func:`match_fraction`, :func:`proposals_agree`).
        raw_outputs_agree (bool, optional): Whether folding kept the
            model's ``mode='tensor'`` outputs (scores and boxes before any
            top-k or NMS, within 1e-3); None without a tensor mode.
        notes (list[str]): What else the row should tell: gradients that
            were zero or excused, state-dict keys that differ.
        adaptations (list[str]): What was changed to run the config here.
        seconds (float): Run time of the row.
    """
    folder: str
    config: str
    status: str = ''
    reason: str = ''
    fa_sites: List[str] = field(default_factory=list)
    pr_sites: Dict[str, int] = field(default_factory=dict)
    uncovered: List[str] = field(default_factory=list)
    folded: Optional[Tuple[int, int]] = None
    agreement: Optional[float] = None
    raw_outputs_agree: Optional[bool] = None
    notes: List[str] = field(default_factory=list)
    adaptations: List[str] = field(default_factory=list)
    seconds: float = 0.0


class NotRunnable(Exception):
    """The baseline of a config cannot run on this machine; the message is
    the reason shown in its row."""


# ---------------------------------------------------------------- configs


def mmdet_config_dir() -> str:
    """The installed mmdet's config folder (``mmdet/.mim/configs``)."""
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')


def algorithm_folders() -> List[str]:
    """The folders of mmdet's configs that hold an algorithm, sorted."""
    root = mmdet_config_dir()
    return sorted(
        name for name in os.listdir(root) if osp.isdir(osp.join(root, name))
        and name not in NOT_ALGORITHM_FOLDERS and folder_configs(name))


def folder_configs(folder: str) -> List[str]:
    """The config file names of ``folder``, sorted."""
    path = osp.join(mmdet_config_dir(), folder)
    return sorted(name for name in os.listdir(path) if name.endswith('.py'))


def default_config(folder: str) -> str:
    """The config a default sweep runs for ``folder``: its entry in
    :data:`DEFAULT_CONFIGS`, else the first model of its ``metafile.yml``
    that exists in the folder, else its first config by name."""
    names = folder_configs(folder)
    if folder in DEFAULT_CONFIGS:
        return DEFAULT_CONFIGS[folder]
    metafile = osp.join(mmdet_config_dir(), folder, 'metafile.yml')
    if osp.isfile(metafile):
        models = load(metafile)
        models = models.get('Models', []) if isinstance(models,
                                                        dict) else models
        for model in models:
            name = osp.basename(model.get('Config', ''))
            if name in names:
                return name
    return names[0]


def list_configs(folders: Optional[Sequence[str]] = None,
                 all_configs: bool = False) -> List[ConfigSpec]:
    """The configs to sweep.

    Args:
        folders (Sequence[str], optional): Algorithm folders to sweep.
            Defaults to all of them (:func:`algorithm_folders`).
        all_configs (bool): Every config of each folder instead of its
            :func:`default_config`. Defaults to False.

    Raises:
        InputError: If a folder is not an algorithm folder of mmdet's
            configs.
    """
    known = algorithm_folders()
    folders = list(folders or known)
    unknown = [folder for folder in folders if folder not in known]
    if unknown:
        raise InputError(
            f'not an algorithm folder of {mmdet_config_dir()}: '
            f'{", ".join(unknown)}; choose among {", ".join(known)}')
    specs = []
    for folder in folders:
        names = (
            folder_configs(folder)
            if all_configs else [default_config(folder)])
        specs.extend(ConfigSpec(folder, name) for name in names)
    return specs


def _argument_default(module_type, name: str):
    """The default of argument ``name`` of the registered module
    ``module_type``; ``inspect.Parameter.empty`` if it takes no such
    argument."""
    cls = MODELS.get(module_type) if isinstance(module_type, str) else None
    parameter = init_parameter(cls, name) if cls is not None else None
    return inspect.Parameter.empty if parameter is None else parameter.default


def check_in_scope(cfg: Config) -> None:
    """Raise :class:`NotRunnable` if ``cfg``'s model is not an image
    detector this sweep can exercise: trackers, video and re-identification
    models, and language-grounded detectors (a BERT text encoder whose
    weights are downloaded)."""
    model_type = cfg.model.get('type')
    cls = MODELS.get(model_type)
    if cls is None:
        raise NotRunnable(f'model type {model_type} is not registered')
    if not issubclass(cls, BaseDetector):
        bases = [base.__name__ for base in cls.__mro__]
        kind = ('a tracking/video model'
                if 'BaseMOTModel' in bases else 'a re-identification model'
                if 'BaseReID' in bases else f'a {cls.__mro__[1].__name__}')
        raise NotRunnable(f'not an image detector: {cls.__name__} is {kind}')
    if any('language_model' in item for item in nested_dicts(cfg.model)):
        raise NotRunnable('language-grounded detector: needs a BERT text '
                          'encoder (transformers, weights downloaded at '
                          'build time)')


def adapt_to_machine(cfg: Config, shapes: Sequence[Tuple[int,
                                                         int]]) -> List[str]:
    """Adapt ``cfg`` in place to run from scratch on this CPU machine and
    return what was changed, one phrase per kind of change.

    - Pretrained weights (``init_cfg`` of type ``Pretrained``,
      ``pretrained=``) are dropped: nothing can be downloaded. The module
      that loses them learns its BN statistics (``norm_eval=False``):
      frozen ones belong to the weights.
    - Synchronised BN (``SyncBN`` and kin, distributed only) becomes
      ``BN``.
    - ``AmpOptimWrapper`` (CUDA only) becomes ``OptimWrapper``.
    - ``BatchFixedSizePad`` pads to the size of the generated images
      (``shapes``, their ``(height, width)``) instead of the config's crop
      size.

    Raises:
        NotRunnable: If the model loads trained weights when it is built
            (``teacher_ckpt`` of knowledge distillation).
    """
    done = set()
    pad_size = tuple(max(shape[i] for shape in shapes) for i in (0, 1))
    for item in nested_dicts(cfg.model):
        for key, value in item.items():
            if key.endswith('_ckpt') and value:
                raise NotRunnable(f'loads trained weights at build time '
                                  f'({key}={value})')
    for item in strip_pretrained(cfg.model):
        done.add('pretrained weights dropped')
        if item.get('norm_eval',
                    _argument_default(item.get('type'), 'norm_eval')) is True:
            # frozen BN statistics come with the weights; from scratch
            # they must be learned, or deep nets blow up
            item['norm_eval'] = False
            done.add('BN statistics learned (norm_eval=False)')
            if (item.get('norm_cfg') or {}).get('eps', 1) == 0:
                # caffe-style BN, exact only with fixed statistics
                item['norm_cfg'].pop('eps')
    for item in nested_dicts(cfg.model):
        if item.get('type') in SYNC_NORMS:
            item['type'] = 'BN'
            done.add('SyncBN -> BN')
        if item.get('type') == 'BatchFixedSizePad' and \
                tuple(item['size']) != pad_size:
            item['size'] = pad_size
            done.add('BatchFixedSizePad to the batch size')
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper and optim_wrapper.get('type') == 'AmpOptimWrapper':
        optim_wrapper.type = 'OptimWrapper'
        optim_wrapper.pop('loss_scale', None)
        optim_wrapper.pop('dtype', None)
        done.add('AMP off')
    return sorted(done)


# Bugs of the installed mmdet that stop a baseline, by the text of the error
# they raise.
MMDET_BUGS = {
    "'SSDHead' object has no attribute 'loss_cls'":
    'mmdet 3.3.0 bug: SSDHead cannot predict, it has no loss_cls '
    '(open-mmlab/mmdetection#11305)',
}

# Why an optional package that a config needs cannot be installed here.
PACKAGE_NOTES = {
    'torchvision':
    'PyPI has only a CUDA build of it for torch 2.13',
    'mmpretrain':
    'its models import torchvision, which PyPI has only as a '
    'CUDA build for torch 2.13',
}


def missing_package(error: BaseException) -> Optional[str]:
    """The top-level package whose absence caused ``error``, if any: the
    ``name`` of a ``ModuleNotFoundError`` in its chain, or the module of a
    failed ``custom_imports``."""
    cause = error
    while cause is not None:
        if isinstance(cause, ModuleNotFoundError) and cause.name:
            return cause.name.split('.')[0]
        cause = cause.__cause__ or cause.__context__
    match = re.search(r"No module named '(\w+)|'imports': \['(\w+)",
                      str(error))
    if isinstance(error, ImportError) and match:
        return match.group(1) or match.group(2)
    return None


def _raised_in(error: BaseException, function: str) -> bool:
    """Whether ``error`` was raised inside a function named ``function``."""
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_name == function:
            return True
        frame = frame.tb_next
    return False


def not_runnable_reason(error: BaseException) -> Optional[str]:
    """Why ``error``, raised by a baseline, means that the config cannot
    run on this machine; None if it does not."""
    op = re.search(
        r'(\w+?)(_forward|_backward)?_impl: implementation for device cpu '
        r'not found', str(error))
    if op:
        return f'mmcv op {op.group(1)} has no CPU kernel (CUDA only)'
    for text, reason in MMDET_BUGS.items():
        if text in str(error):
            return reason
    if isinstance(error, RuntimeError) and _raised_in(error, '_do_paste_mask'):
        return ('mmdet pastes masks on CPU only around the boxes, and fails '
                'on a box outside the image, which this untrained model '
                'predicts')
    package = missing_package(error)
    if package:
        note = PACKAGE_NOTES.get(package, 'not installed')
        return f'needs the {package} package: {note}'
    return None


# ------------------------------------------------------------------ inputs


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


# ----------------------------------------------------------------- running


def build_model(cfg: Config, seed: int) -> nn.Module:
    """Build and initialise ``cfg``'s model, seeded. (Built from a copy:
    some detectors write into their config, DETR its class weights, DINO
    its denoising settings.)"""
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model


def _build_schedulers(cfg: Config, optim_wrapper) -> list:
    """The config's parameter schedulers, as a Runner builds them;
    epoch-based ones stay at their epoch-0 value (the sweep's steps are
    the first iterations of a run)."""
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    built = []
    for scheduler in schedulers:
        scheduler = copy.deepcopy(scheduler)
        scheduler.pop('convert_to_iter_based', None)
        built.append(
            PARAM_SCHEDULERS.build(
                scheduler, default_args=dict(optimizer=optim_wrapper)))
    return built


def train(model: nn.Module, cfg: Config, batch: dict,
          settings: SweepSettings) -> List[float]:
    """Train ``model`` ``settings.steps`` steps on ``batch`` with
    ``cfg``'s optimizer and schedulers, setting the epoch and iteration
    in the message hub as mmengine's ``RuntimeInfoHook`` does, and return
    the losses.

    Raises:
        FloatingPointError: If a loss is not finite.
    """
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = _build_schedulers(cfg, optim_wrapper)
    hub = MessageHub.get_current_instance()
    train_cfg = cfg.get('train_cfg') or {}
    hub.update_info('epoch', 0)
    hub.update_info('max_epochs', train_cfg.get('max_epochs', 1))
    hub.update_info('max_iters', train_cfg.get('max_iters', settings.steps))
    model.train()
    losses = []
    torch.manual_seed(settings.seed)
    for step in range(settings.steps):
        hub.update_info('iter', step)
        log_vars = model.train_step(copy.deepcopy(batch), optim_wrapper)
        loss = float(torch.as_tensor(log_vars['loss']).detach())
        if not np.isfinite(loss):
            raise FloatingPointError(f'loss is {loss} at step {step + 1}')
        losses.append(loss)
        for scheduler in schedulers:
            if not scheduler.by_epoch:
                scheduler.step()
    return losses


@torch.no_grad()
def predict(model: nn.Module, cfg: Config, batch: dict) -> List[DetDataSample]:
    """``model``'s predictions for ``batch`` in eval mode, in batches of
    ``cfg``'s test dataloader (of one image for most configs; some heads,
    such as guided anchoring's masked convs, predict only one at a time).
    """
    model.eval()
    data = eval_batch(batch)
    size = (cfg.get('test_dataloader') or {}).get('batch_size') or len(
        data['inputs'])
    results = []
    for start in range(0, len(data['inputs']), size):
        chunk = {key: value[start:start + size] for key, value in data.items()}
        results.extend(model.test_step(copy.deepcopy(chunk)))
    return results


# ------------------------------------------------------------ YOLOR checks


def implicit_targets(model: nn.Module) -> Dict[str, Optional[int]]:
    """The modules of ``model`` whose outputs its implicits act on, with
    their number of per-level calls (None for a module whose outputs are
    indexed as a sequence: a neck or backbone under feature alignment, or
    an output conv)."""
    targets: Dict[str, Optional[int]] = {
        target: None
        for target in alignment_targets(model)
    }
    targets.update({
        path: refined_levels(layer)
        for path, layer in refined_layers(model).items()
    })
    return targets


# Methods by which mmdet's heads compute their losses: a ``*_head`` module
# without one (ResNet's last stage as an RoI ``shared_head``, SCNet's
# ``feat_relay_head``, SOLOv2's ``mask_feature_head``) computes features.
LOSS_METHODS = ('loss', 'loss_by_feat', 'loss_and_target')


def _is_head_path(path: str) -> bool:
    """A ``*_head`` module, or a stage of a list of them (cascades)."""
    parts = path.split('.')
    return parts[-1].endswith('_head') or (len(parts) > 1
                                           and parts[-1].isdigit()
                                           and parts[-2].endswith('_head'))


def head_families(model: nn.Module) -> List[str]:
    """The head families of ``model`` that have prediction layers.

    A head family is a ``*_head`` module (or a cascade stage of one) that
    computes a loss (:data:`LOSS_METHODS`) and holds a trainable conv or
    Linear outside implicit layers, unless it holds another such family:
    ``roi_head`` holds ``roi_head.bbox_head`` (a conv of its RoI extractor
    is no prediction layer). A teacher frozen for distillation or
    semi-supervised learning has none. Heads the plugin declares to predict
    nothing (:func:`heads_predicting_nothing`) are none either.
    """
    predicting_nothing = heads_predicting_nothing(model)
    implicit = tuple(f'{name}.' for name in implicit_layers(model))
    layers = [
        name for name, module in model.named_modules()
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))
        and not name.startswith(implicit) and any(
            param.requires_grad for param in module.parameters())
    ]
    families = [
        name for name, module in model.named_modules()
        if _is_head_path(name) and any(
            hasattr(module, method) for method in LOSS_METHODS) and any(
                layer.startswith(f'{name}.')
                for layer in layers) and name not in predicting_nothing
    ]
    return [
        family for family in families
        if not any(other.startswith(f'{family}.') for other in families)
    ]


def heads_predicting_nothing(model: nn.Module) -> Dict[str, str]:
    """The ``*_head`` modules of ``model`` that the plugin's table of
    prediction layers declares to predict nothing of their own (an empty
    entry), with the table's reason: the sweep reports them instead of
    counting them as head families."""
    found = {}
    for name, module in model.named_modules():
        entry = table_entry(type(module)) if _is_head_path(name) else None
        if entry is not None and not entry.names:
            found[name] = entry.why
    return found


def family_of(path: str, families: Sequence[str]) -> str:
    """The innermost of ``families`` holding the module ``path``; else the
    path up to its last ``*_head`` component (with a stage index after
    it), else its top-level module."""
    holders = [
        family for family in families
        if path == family or path.startswith(f'{family}.')
    ]
    if holders:
        return max(holders, key=len)
    parts = path.split('.')
    heads = [i for i, part in enumerate(parts) if part.endswith('_head')]
    if not heads:
        return parts[0]
    end = heads[-1] + 1
    if end < len(parts) and parts[end].isdigit():
        end += 1
    return '.'.join(parts[:end])


def pr_sites(model: nn.Module, families: Sequence[str]) -> Dict[str, int]:
    """Refined prediction layers per head family (:func:`family_of`)."""
    counts = Counter(
        family_of(layer, families) for layer in refined_layers(model))
    return dict(sorted(counts.items()))


class OutputProbe:
    """Record which outputs of some modules of a model a gradient reaches
    while it trains: in the baseline, the outputs that the YOLOR model's
    implicits act on.

    An implicit whose output no gradient reaches in the baseline either
    gets none in the YOLOR model, without fault of the plugin: a pyramid
    level where these inputs have no positive sample of a loss that only
    reads positives, a level the heads do not read.

    Args:
        model (nn.Module): The baseline.
        targets (dict[str, int | None]): :func:`implicit_targets` of the
            YOLOR model.
    """

    def __init__(self, model: nn.Module, targets: Dict[str,
                                                       Optional[int]]) -> None:
        self.watched = set()
        self.reached = set()
        self._calls = Counter()
        self._handles = []
        modules = dict(model.named_modules())
        for path, levels in targets.items():
            if path in modules:
                self._handles.append(modules[path].register_forward_hook(
                    partial(self._record, path, levels)))

    def _record(self, path: str, levels: Optional[int], module: nn.Module,
                inputs: tuple, output) -> None:
        if levels is None:
            if isinstance(output, (tuple, list)):
                for index, item in enumerate(output):
                    self._watch(item, (path, index))
            else:
                self._watch(output, (path, None))
        else:
            self._watch(output, (path, self._calls[path] % levels))
            self._calls[path] += 1

    def _watch(self, tensor, key: Tuple[str, Optional[int]]) -> None:
        if torch.is_tensor(tensor) and tensor.requires_grad:
            self.watched.add(key)
            tensor.register_hook(lambda grad: self.reached.add(key))

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()

    def unreached(self, target: Tuple[str, Optional[int]]) -> bool:
        """Whether the output ``target`` (``(module path, index)`` of an
        :class:`~mmdet_yolor.models.ImplicitSite`) took part in the loss's
        graph and no gradient reached it."""
        path, index = target
        keys = [(path, index)] if index is not None else [
            key for key in self.watched if key[0] == path
        ]
        return bool(keys) and all(
            key in self.watched and key not in self.reached for key in keys)


class ImplicitProbe:
    """Record which implicit layers of a model are called, and which of their
    trainable parameters a gradient reaches (and is non-zero), while it
    trains.

    Args:
        model (nn.Module): The YOLOR model.
    """

    def __init__(self, model: nn.Module) -> None:
        sites = implicit_sites(model)
        self.layers = {site.name: site.implicit for site in sites}
        # what each implicit acts on: (module path, output or level)
        self.targets = {site.name: (site.target, site.index) for site in sites}
        self.calls = Counter()
        self.trainable: Dict[str, str] = {}  # parameter -> implicit layer
        self.reached = set()
        self.nonzero = set()
        self._handles = []
        for name, layer in self.layers.items():
            self._handles.append(
                layer.register_forward_hook(
                    lambda *_, name=name: self.calls.update([name])))
            for key, param in layer.named_parameters():
                if param.requires_grad:
                    self.trainable[f'{name}.{key}'] = name
                    self._handles.append(
                        param.register_hook(
                            partial(self._grad, f'{name}.{key}')))

    def _grad(self, key: str, grad: torch.Tensor) -> None:
        self.reached.add(key)
        if bool(grad.abs().sum() > 0):
            self.nonzero.add(key)

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()

    def problems(self, baseline: Optional[OutputProbe] = None) -> List[str]:
        """What the recorded training steps got wrong: implicits never
        called, parameters no gradient reached (not in the loss's graph)
        although one reached the output they act on in the ``baseline``."""
        problems = []
        uncalled = [name for name in self.layers if not self.calls[name]]
        if uncalled:
            problems.append(f'{len(uncalled)} of {len(self.layers)} '
                            f'implicits never called ({_few(uncalled)})')
        unreached = [
            key for key in self.unreached() if not self.excused(key, baseline)
        ]
        if unreached:
            problems.append(f'no gradient reaches {len(unreached)} of '
                            f'{len(self.trainable)} implicit parameters '
                            f'({_few(unreached)})')
        return problems

    def excused(self, key: str, baseline: Optional[OutputProbe]) -> bool:
        """Whether no gradient reached the output that the parameter
        ``key`` acts on in the ``baseline`` either."""
        return baseline is not None and baseline.unreached(
            self.targets[self.trainable[key]])

    def unreached(self) -> List[str]:
        """Trainable parameters no gradient reached."""
        return sorted(set(self.trainable) - self.reached)

    def zero_gradients(self) -> List[str]:
        """Parameters whose gradients were all zero: in the graph, but the
        loss did not depend on them in these steps (a pyramid level without
        positive samples, a loss still warming up)."""
        return sorted(self.reached - self.nonzero)


def _few(names: Sequence[str], limit: int = 3) -> str:
    shown = ', '.join(names[:limit])
    return shown + (f', ... ({len(names) - limit} more)'
                    if len(names) > limit else '')


def match_fraction(before: List[DetDataSample],
                   after: List[DetDataSample],
                   box_tol: float = 0.5,
                   score_tol: float = 1e-3) -> float:
    """How much of two models' predictions agree, in [0, 1].

    Detections are matched as sets, not in order (NMS and top-k may order
    near-ties differently): one matches if the other side has one with the
    same label, a score within ``score_tol`` and box corners within
    ``box_tol`` pixels. Pixel maps (semantic, panoptic) count the share of
    equal pixels. The result is the worst of the images and kinds.
    """
    fractions = []
    for first, second in zip(before, after):
        if 'pred_instances' in first:
            fractions.append(
                _instances_agree(first.pred_instances, second.pred_instances,
                                 box_tol, score_tol))
        for key in ('pred_sem_seg', 'pred_panoptic_seg'):
            if key in first:
                fractions.append(
                    float((first.get(key).sem_seg == second.get(key).sem_seg
                           ).float().mean()))
    return min(fractions, default=1.0)


def _instances_agree(first: InstanceData, second: InstanceData, box_tol: float,
                     score_tol: float) -> float:
    total = max(len(first), len(second))
    if total == 0:
        return 1.0
    if not len(first) or not len(second):
        return 0.0
    # proposals of a learned RPN (Sparse R-CNN's embeddings) have no labels
    # or scores
    close = torch.ones(len(first), len(second), dtype=torch.bool)
    if 'labels' in first:
        close &= first.labels[:, None] == second.labels[None]
    if 'scores' in first:
        close &= (first.scores[:, None] -
                  second.scores[None]).abs() <= score_tol
    if 'bboxes' in first:
        boxes = (first.bboxes[:, None] - second.bboxes[None]).abs()
        close &= boxes.amax(-1) <= box_tol
    matched = min(int(close.any(1).sum()), int(close.any(0).sum()))
    return matched / total


@torch.no_grad()
def raw_outputs(model: nn.Module, batch: dict) -> Optional[List[Tensor]]:
    """``model``'s ``mode='tensor'`` outputs for ``batch`` in eval mode,
    flattened; None where the model has no tensor mode (or it fails)."""
    model.eval()
    data = model.data_preprocessor(copy.deepcopy(eval_batch(batch)), False)
    try:
        outputs = model(**data, mode='tensor')
    except Exception:
        return None
    return [leaf for leaf in tree_leaves(outputs) if torch.is_tensor(leaf)]


def outputs_agree(first: Optional[List[Tensor]],
                  second: Optional[List[Tensor]]) -> Optional[bool]:
    """Whether two :func:`raw_outputs` agree within 1e-3 (None if either
    is None)."""
    if first is None or second is None:
        return None
    return len(first) == len(second) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=1e-3, atol=1e-3)
        for a, b in zip(first, second))


def proposals_agree(first: List[List[InstanceData]],
                    second: List[List[InstanceData]]) -> float:
    """:func:`match_fraction` of two recordings of
    :func:`~.stages.replay_proposals`."""
    fractions = [
        _instances_agree(a, b, box_tol=0.5, score_tol=1e-3)
        for calls in zip(first, second) for a, b in zip(*calls)
    ]
    return min(fractions, default=1.0)


# -------------------------------------------------------------------- rows


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines() or ['']
    text = f'{type(error).__name__}: {lines[0]}'
    return text + (' [...]' if len(lines) > 1 else '')


def sweep_config(cfg: Config, folder: str, name: str,
                 settings: SweepSettings) -> SweepRow:
    """Run one config's baseline and YOLOR variant in this process.

    Args:
        cfg (Config): A loaded mmdet config (not modified).
        folder (str): Its folder in mmdet's configs, for the row.
        name (str): Its file name, for the row.
        settings (SweepSettings): How to exercise it.

    Returns:
        SweepRow: The row; exceptions become its status.
    """
    register_all_modules()
    _quiet_logs()
    start = time.perf_counter()
    row = SweepRow(folder, name)
    try:
        _sweep(cfg, settings, row)
    finally:
        row.seconds = time.perf_counter() - start
    return row


def _sweep(cfg: Config, settings: SweepSettings, row: SweepRow) -> None:
    cfg = copy.deepcopy(cfg)
    try:
        check_in_scope(cfg)
        shapes = image_shapes(cfg, settings)
        row.adaptations = adapt_to_machine(cfg, shapes)
        baseline = build_model(cfg, settings.seed)
    except Exception as error:
        _baseline_failed(row, error)
        return
    # the YOLOR model is built before the baseline trains: it starts from
    # the baseline's weights, and its implicits say which outputs of the
    # baseline to watch
    yolor_cfg = model = failure = None
    phase = 'yolorize'
    try:
        yolor_cfg = yolorize(cfg, **YOLOR_PARTS['all'])
        phase = 'build'
        model = build_model(yolor_cfg, settings.seed)
        _load_baseline_weights(model, baseline, row)
    except Exception as error:
        failure = (phase, error)
    outputs = OutputProbe(baseline, implicit_targets(model) if model else {})
    try:
        batch = generate_samples(input_spec(cfg, baseline), shapes, settings)
        train(baseline, cfg, batch, settings)
        outputs.remove()
        predict(baseline, cfg, batch)
    except Exception as error:
        _baseline_failed(row, error)
        return
    del baseline
    if failure is not None:
        _yolor_failed(row, *failure)
        return

    families = head_families(model)
    row.fa_sites = alignment_targets(model)
    row.pr_sites = pr_sites(model, families)
    row.uncovered = [
        family for family in families if family not in row.pr_sites
    ]
    row.notes.extend(f'{head} predicts nothing: {why}'
                     for head, why in heads_predicting_nothing(model).items())
    probe = ImplicitProbe(model)
    phase = 'train'
    try:
        train(model, yolor_cfg, batch, settings)
        probe.remove()
        phase = 'predict'
        with replay_proposals(model) as proposals:
            before = predict(model, yolor_cfg, batch)
        raw_before = raw_outputs(model, batch)
        phase = 'fold'
        # folds in place and reports; fuse_implicit then folds nothing more
        # and removes what was folded
        report = fold_implicit(model)
        row.folded = (sum(site.folded
                          for site in report.sites), len(report.sites))
        fuse_implicit(model, logger='silent')
        with replay_proposals(model, replay=proposals) as folded_proposals:
            after = predict(model, yolor_cfg, batch)
        row.agreement = min(
            match_fraction(before, after),
            proposals_agree(proposals, folded_proposals))
        row.raw_outputs_agree = outputs_agree(raw_before,
                                              raw_outputs(model, batch))
    except Exception as error:
        _yolor_failed(row, phase, error)
        return
    _judge(row, probe, outputs)


def _baseline_failed(row: SweepRow, error: BaseException) -> None:
    reason = str(error) if isinstance(error, NotRunnable) else \
        not_runnable_reason(error)
    row.status = NOT_RUNNABLE if reason else BASELINE_ERROR
    row.reason = reason or _one_line(error)


def _yolor_failed(row: SweepRow, phase: str, error: BaseException) -> None:
    """A refusal (an ``InputError``: its first line, and the phase unless
    ``yolorize`` or building raised it) or a crash."""
    if isinstance(error, InputError):
        row.status = REFUSED
        row.reason = str(error).strip().splitlines()[0]
        if phase not in ('yolorize', 'build'):
            row.reason = f'in {phase}: {row.reason}'
    else:
        row.status, row.reason = CRASH, f'in {phase}: {_one_line(error)}'


def _load_baseline_weights(model: nn.Module, baseline: nn.Module,
                           row: SweepRow) -> None:
    """Start ``model`` from the baseline's initial weights, so that the two
    differ only by YOLOR; note keys that do not match."""
    result = model.load_state_dict(baseline.state_dict(), strict=False)
    missing = [
        key for key in result.missing_keys
        if f'.{IMPLICIT_MODULE_PREFIX}' not in f'.{key}'
    ]
    for keys, where in ((result.unexpected_keys, 'not in the YOLOR model'),
                        (missing, 'only in the YOLOR model')):
        if keys:
            row.notes.append(f'{len(keys)} state-dict keys {where} '
                             f'({_few(sorted(keys))})')


def _judge(row: SweepRow, probe: ImplicitProbe, outputs: OutputProbe) -> None:
    """Set the status of a row whose YOLOR model ran."""
    problems = probe.problems(outputs)
    excused = [key for key in probe.unreached() if probe.excused(key, outputs)]
    if excused:
        row.notes.append(
            f'no gradient reaches {len(excused)} implicit parameters, as '
            f'none reaches what they act on in the baseline '
            f'({_few(excused)})')
    zero = probe.zero_gradients()
    if zero:
        row.notes.append(f'zero gradients in these steps for {len(zero)} '
                         f'of {len(probe.trainable)} implicit parameters '
                         f'({_few(zero)})')
    if not probe.layers:
        problems.append('no implicit layers in the model')
    if row.agreement < MIN_AGREEMENT and row.raw_outputs_agree:
        row.notes.append(
            f'folding kept the raw outputs, but only {row.agreement:.0%} '
            f'of the predictions: near-tied scores of this untrained model '
            f'reorder at a top-k')
    elif row.agreement < MIN_AGREEMENT:
        problems.append(f'fuse_implicit changed the predictions '
                        f'({row.agreement:.0%} agree)')
    missing = [f'no implicits in {family}' for family in row.uncovered]
    if not row.fa_sites:
        missing.insert(0, 'no feature alignment')
    if problems:
        row.status, row.reason = FAIL, '; '.join(problems + missing)
    elif missing:
        row.status, row.reason = PARTIAL, '; '.join(missing)
    else:
        row.status = OK


def _quiet_logs() -> None:
    """Keep mmengine's messages (thousands of initialisation lines) out of
    the output: they go to the current logger, which this makes an
    ERROR-level one."""
    MMLogger.get_instance('mmdet_yolor.zoo_sweep', log_level='ERROR')


def _row_process(spec: ConfigSpec, settings: SweepSettings, log_path: str,
                 connection) -> None:
    """The body of a row's own process: output to ``log_path``, the row
    back through ``connection``."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    warnings.simplefilter('ignore')
    connection.send(run_row(spec, settings))


def run_row(spec: ConfigSpec, settings: SweepSettings) -> SweepRow:
    """Load ``spec``'s config and sweep it in this process."""
    start = time.perf_counter()
    try:
        cfg = Config.fromfile(spec.path)
    except Exception as error:
        reason = not_runnable_reason(error)
        return SweepRow(
            spec.folder,
            spec.name,
            NOT_RUNNABLE if reason else BASELINE_ERROR,
            reason or f'config does not load: {_one_line(error)}',
            seconds=time.perf_counter() - start)
    return sweep_config(cfg, spec.folder, spec.name, settings)


def run_row_isolated(spec: ConfigSpec, settings: SweepSettings) -> SweepRow:
    """Sweep ``spec``'s config in its own process, killed after
    ``settings.timeout`` seconds: a segfault, leak or hang costs one row."""
    context = multiprocessing.get_context('spawn')
    receiver, sender = context.Pipe(duplex=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = osp.join(tmp, 'row.log')
        process = context.Process(
            target=_row_process, args=(spec, settings, log_path, sender))
        process.start()
        sender.close()
        row = None
        if receiver.poll(settings.timeout):
            try:
                row = receiver.recv()
            except EOFError:  # died before sending
                pass
        if process.is_alive():
            process.kill()
        process.join()
        if row is not None:
            return row
        seconds = time.perf_counter() - start
        if seconds >= settings.timeout:
            return SweepRow(
                spec.folder,
                spec.name,
                TIMEOUT,
                f'killed after {settings.timeout:.0f} s',
                seconds=seconds)
        return SweepRow(
            spec.folder,
            spec.name,
            KILLED, f'process died (exit code {process.exitcode}): '
            f'{_last_line(log_path)}',
            seconds=seconds)


def _last_line(path: str) -> str:
    if not osp.isfile(path):
        return 'no output'
    with open(path, errors='replace') as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1][:200] if lines else 'no output'


def load_rows(path: str) -> Dict[Tuple[str, str], SweepRow]:
    """The rows saved in the JSON-lines file ``path`` (see
    :func:`run_sweep`) by ``(folder, config)``; the last one of each wins.
    Empty if the file does not exist."""
    rows = {}
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    row = SweepRow(**json.loads(line))
                    row.folded = tuple(row.folded) if row.folded else None
                    rows[row.folder, row.config] = row
    return rows


def run_sweep(specs: Sequence[ConfigSpec],
              settings: SweepSettings,
              isolated: bool = True,
              progress: Optional[Callable[[str], None]] = print,
              rows_file: Optional[str] = None,
              resume: bool = False) -> List[SweepRow]:
    """Sweep ``specs`` one after the other.

    Args:
        specs (Sequence[ConfigSpec]): The configs.
        settings (SweepSettings): How to exercise them.
        isolated (bool): Run each in its own process
            (:func:`run_row_isolated`). Defaults to True.
        progress (callable, optional): Called with one line per finished
            row: position, folder, config, status, time and the estimated
            time left. Defaults to ``print``.
        rows_file (str, optional): A JSON-lines file each finished row is
            appended to. Defaults to None.
        resume (bool): Take the rows of configs already in ``rows_file``
            from there instead of running them again (to go on with a
            sweep that was stopped, or to rerun a few configs after
            deleting their lines). Defaults to False.
    """
    done = load_rows(rows_file) if resume and rows_file else {}
    todo = [spec for spec in specs if (spec.folder, spec.name) not in done]
    if done and progress is not None:
        progress(f'{len(specs) - len(todo)} configs taken from {rows_file}')
    new = {}
    start = time.perf_counter()
    for index, spec in enumerate(todo, 1):
        row = (run_row_isolated if isolated else run_row)(spec, settings)
        new[spec.folder, spec.name] = row
        if rows_file:
            with open(rows_file, 'a') as f:
                f.write(json.dumps(asdict(row)) + '\n')
        if progress is not None:
            elapsed = time.perf_counter() - start
            left = elapsed / index * (len(todo) - index)
            width = len(str(len(todo)))
            progress(f'[{index:{width}d}/{len(todo)}] {spec.folder} '
                     f'{spec.name} ... {row.status} {row.seconds:.1f}s, '
                     f'ETA {_duration(left)}')
    return [
        new.get((spec.folder, spec.name)) or done[spec.folder, spec.name]
        for spec in specs
    ]


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if seconds < 60:
        return f'{seconds:.0f}s'
    return f'{minutes // 60}h{minutes % 60:02d}m' if minutes >= 60 \
        else f'{minutes}m'


# ------------------------------------------------------------------ report


@dataclass
class SweepTotals:
    """Counts of a sweep.

    Attributes:
        statuses (dict[str, int]): Rows per status.
        rows (int): All rows.
        runnable (int): Rows whose baseline can run here (not ``n/a``).
        covered (int): ``ok`` and ``partial`` rows.
        folders (int): Folders swept.
        runnable_folders (int): Folders with a runnable row.
        covered_folders (int): Runnable folders whose runnable rows are all
            covered.
    """
    statuses: Dict[str, int]
    rows: int
    runnable: int
    covered: int
    folders: int
    runnable_folders: int
    covered_folders: int


def summarize(rows: Sequence[SweepRow]) -> SweepTotals:
    """Count ``rows`` by status and by folder."""
    statuses = Counter(row.status for row in rows)
    by_folder: Dict[str, List[SweepRow]] = {}
    for row in rows:
        by_folder.setdefault(row.folder, []).append(row)
    runnable = {
        folder: [row for row in items if row.status != NOT_RUNNABLE]
        for folder, items in by_folder.items()
    }
    return SweepTotals(
        statuses={
            status: statuses[status]
            for status in STATUSES if statuses[status]
        },
        rows=len(rows),
        runnable=sum(row.status != NOT_RUNNABLE for row in rows),
        covered=sum(row.status in COVERED for row in rows),
        folders=len(by_folder),
        runnable_folders=sum(bool(items) for items in runnable.values()),
        covered_folders=sum(
            bool(items) and all(row.status in COVERED for row in items)
            for items in runnable.values()))


def _sites_cell(sites: Sequence[str]) -> str:
    """``neck.fpn_convs.{0,1,2}`` for numbered siblings."""
    groups: Dict[str, List[str]] = {}
    for site in sites:
        head, _, tail = site.rpartition('.')
        key = head if tail.isdigit() else site
        groups.setdefault(key, []).append(tail if tail.isdigit() else '')
    return ', '.join(f'{key}.{{{",".join(tails)}}}' if tails[0] else key
                     for key, tails in groups.items())


def _status_cell(row: SweepRow) -> str:
    reason = row.reason.replace(f'{mmdet_config_dir()}/', 'mmdet::')
    return f'{row.status}: {reason}' if reason else row.status


def _row_cells(row: SweepRow, markdown: bool) -> List[str]:
    if row.pr_sites:
        separator = '<br>' if markdown else ', '
        pr = separator.join(f'{family} ({count})'
                            for family, count in row.pr_sites.items())
    else:
        pr = '-'
    folded = f'{row.folded[0]}/{row.folded[1]}' if row.folded else '-'
    if row.agreement is not None and row.agreement < 1:
        folded += f' ({row.agreement:.0%} kept)'
    return [
        row.folder, row.config,
        _sites_cell(row.fa_sites) or '-', pr,
        _status_cell(row), folded, f'{row.seconds:.0f}s'
    ]


HEADER = ['folder', 'config', 'FA site', 'PR sites', 'status', 'fold', 'time']


def format_totals(totals: SweepTotals) -> List[str]:
    """The totals as lines."""
    share = totals.covered_folders / max(totals.runnable_folders, 1)
    counts = ', '.join(f'{status} {count}'
                       for status, count in totals.statuses.items())
    return [
        f'covered folders: {totals.covered_folders}/'
        f'{totals.runnable_folders} runnable ({share:.0%}); '
        f'{totals.folders - totals.runnable_folders} folders not runnable '
        f'here',
        f'configs: {totals.rows} ({counts}); covered {totals.covered}/'
        f'{totals.runnable} runnable',
    ]


def format_table(rows: Sequence[SweepRow], width: int = 60) -> str:
    """A plain-text table of ``rows`` with the totals, cells cut to
    ``width`` characters."""
    table = [HEADER] + [[
        cell if len(cell) <= width else cell[:width - 3] + '...'
        for cell in _row_cells(row, markdown=False)
    ] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = [
        '  '.join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
        for line in table
    ]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines + [''] + format_totals(summarize(rows)))


def machine_description() -> str:
    """The CPU, its cores and the OpenMMLab stack."""
    cpu = platform.processor() or platform.machine()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = [
                line.split(':', 1)[1].strip() for line in f
                if line.startswith('model name')
            ]
        cpu = names[0] if names else cpu
    gpu = 'a CUDA GPU' if torch.cuda.is_available() else 'no GPU'
    return (f'{os.cpu_count()}-core CPU ({cpu}), {gpu}; torch '
            f'{torch.__version__}, mmcv {mmcv.__version__}, mmdet '
            f'{mmdet.__version__}')


def _escape(text: str) -> str:
    return text.replace('|', '\\|')


def format_markdown(rows: Sequence[SweepRow], settings: SweepSettings,
                    command: str, seconds: float) -> str:
    """``docs/model_zoo.md``: how the sweep was made, its totals, the
    table, and why the rows that cannot run here cannot.

    Args:
        rows (Sequence[SweepRow]): The sweep's rows.
        settings (SweepSettings): Its settings.
        command (str): The command that made it.
        seconds (float): Its run time.
    """
    totals = summarize(rows)
    shapes = ', '.join(f'{h}x{w}' for h, w in settings.image_shapes())
    adaptations = sorted({item for row in rows for item in row.adaptations})
    lines = [
        '# YOLOR across the mmdet model zoo',
        '',
        '<!-- Generated by tools/analysis/zoo_sweep.py: do not edit. -->',
        '',
        f'Made by `{command}` on {datetime.date.today().isoformat()}, '
        f'{machine_description()}; run time {_duration(seconds)}.',
        '',
        'Each config of the installed mmdet (one per algorithm folder: the '
        'first model of its `metafile.yml`, or a lighter sibling with the '
        'same heads) runs twice on generated inputs: '
        f'{settings.batch_size} images ({shapes} px) with '
        f'{settings.objects} or fewer objects, their boxes, instance masks '
        'and, where the model reads them, semantic maps and proposals. The '
        f'**baseline** trains {settings.steps} steps (the config\'s '
        'optimizer, warm-up and loss; the epoch and iteration set as '
        'mmengine\'s `RuntimeInfoHook` sets them) and predicts. Its '
        '**YOLOR form**, `yolorize(cfg, **YOLOR_PARTS[\'all\'])`, trains the '
        'same steps on the same inputs: every loss finite, every implicit '
        'layer called and reached by a non-zero gradient; it predicts, and '
        '`fuse_implicit` folds it, after which its predictions must agree '
        'with the unfolded ones (95% of detections matched as sets).',
        '',
        'Columns: **FA site**, the modules holding feature-alignment '
        'implicits; **PR sites**, per head family (a `*_head` module, per '
        'stage in cascades) the prediction layers refined by implicits; '
        '**fold**, implicit layers folded by `fuse_implicit` / all of them; '
        '**time**, both variants of the row.',
        '',
        'Statuses: **ok** (every check passed, feature alignment and every '
        'head family with prediction layers has implicits); **partial** '
        '(every check passed, but some head family or the features have no '
        'implicits: listed); **refused** (the plugin raised its one-line '
        '`InputError`); **crash** (anything else raised on the YOLOR path); '
        '**fail** (the YOLOR model ran but a check failed); **n/a** (the '
        'baseline cannot run on this machine: reason given); **baseline '
        'error** (the baseline failed for another reason); **timeout** / '
        '**killed** (the row\'s process exceeded '
        f'{settings.timeout:.0f} s / died). **Covered** means ok or '
        'partial; a folder is covered when all its runnable configs are.',
        '',
        'Adapted to run here: ' +
        (', '.join(adaptations) if adaptations else 'nothing') +
        ' (pretrained weights cannot be downloaded; synchronised BN and AMP '
        'need distributed CUDA training; a fixed-size batch pad follows the '
        'generated image size).',
        '',
        '## Totals',
        '',
    ]
    lines += [f'- {line}' for line in format_totals(totals)]
    lines += [
        '',
        '## Configs',
        '',
        '| ' + ' | '.join(HEADER) + ' |',
        '| :-- | :-- | :-- | :-- | :-- | --: | --: |',
    ]
    for row in rows:
        lines.append('| ' + ' | '.join(
            _escape(cell) for cell in _row_cells(row, markdown=True)) + ' |')
    not_runnable: Dict[str, List[str]] = {}
    for row in rows:
        if row.status == NOT_RUNNABLE:
            not_runnable.setdefault(row.reason,
                                    []).append(f'{row.folder}/{row.config}')
    lines += ['', '## Not runnable here', '']
    if not_runnable:
        for reason, configs in sorted(not_runnable.items()):
            lines.append(f'- {reason}: {", ".join(configs)}')
    else:
        lines.append('Every baseline ran.')
    noted = [row for row in rows if row.notes]
    lines += ['', '## Notes', '']
    lines += [
        f'- {row.folder}/{row.config}: ' + '; '.join(map(_escape, row.notes))
        for row in noted
    ] or ['None.']
    lines += ['', '## Not swept', '']
    lines += [
        f'- `{folder}`: {why}'
        for folder, why in sorted(NOT_ALGORITHM_FOLDERS.items())
    ]
    return '\n'.join(lines) + '\n'
