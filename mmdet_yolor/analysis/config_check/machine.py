# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What the sweep can run on this CPU machine: the models in its scope, the
changes that let a config run here from scratch, and why a baseline that
fails cannot run here."""
import copy
import inspect
import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hub import get_config

from ...config_edits import nested_dicts, strip_pretrained
from ...models.wrapping import init_parameter

SYNC_NORMS = ('SyncBN', 'MMSyncBN', 'NaiveSyncBN', 'TorchSyncBN')
# At most this many boxes enter a RoI head's NMS at test time, proposals x
# classes: an untrained sigmoid classifier scores every class near 0.5, so
# each proposal stays a candidate of every class (V3Det's 13204 classes and
# 1000 proposals: 13.2M boxes, 10 minutes of NMS per image here).
MAX_NMS_CANDIDATES = 250_000
# How mmdet's configs name their teacher's config file: relative to the root
# of an mmdet checkout (``ld``'s ``teacher_config='configs/gfl/...'``).
CHECKOUT_CONFIGS = 'configs/'


class NotRunnable(Exception):
    """The baseline of a config cannot run on this machine; the message is
    the reason shown in its row."""


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


def adapt_to_machine(cfg: Config,
                     shapes: Sequence[Tuple[int, int]],
                     work_dir: Optional[str] = None) -> List[str]:
    """Adapt ``cfg`` in place to run from scratch on this CPU machine and
    return what was changed, one phrase per kind of change.

    - A teacher config given as a file (knowledge distillation:
      ``teacher_config``) is read into the model config, so that its
      pretrained weights are dropped as well; a path relative to an mmdet
      checkout (``configs/gfl/...``) is read from the installed mmdet.
    - A teacher checkpoint (``teacher_ckpt``) cannot be downloaded: the
      teacher, built and initialised here, is saved in ``work_dir`` and
      loaded from there, as the model loads its trained teacher.
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
    - A two-stage detector keeps at most :data:`MAX_NMS_CANDIDATES`
      proposals x classes at test time (fewer proposals).

    Args:
        cfg (Config): The config, changed in place.
        shapes (Sequence[tuple[int, int]]): ``(height, width)`` of the
            generated images.
        work_dir (str, optional): Where a teacher checkpoint made here is
            written; it must outlive the model's builds.

    Raises:
        NotRunnable: If the model loads trained weights when it is built
            other than a teacher's (a ``*_ckpt`` key), or a teacher's
            without a ``work_dir``.
    """
    done = set()
    pad_size = tuple(max(shape[i] for shape in shapes) for i in (0, 1))
    checkpoints = [(item, key) for item in nested_dicts(cfg.model)
                   for key, value in item.items()
                   if key.endswith('_ckpt') and value]
    for item, key in checkpoints:
        if key != 'teacher_ckpt' or work_dir is None:
            raise NotRunnable(f'loads trained weights at build time '
                              f'({key}={item[key]})')
    for item in nested_dicts(cfg.model):
        if isinstance(item.get('teacher_config'), str):
            item['teacher_config'] = dict(
                model=_teacher_config(item['teacher_config']).model)
            done.add('teacher config read in')
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
    if _cap_test_proposals(cfg.model):
        done.add('test proposals capped (proposals x classes <= '
                 f'{MAX_NMS_CANDIDATES // 1000}k)')
    for item, key in checkpoints:
        item[key] = _save_teacher(cfg.model, item, key, work_dir)
        done.add('teacher checkpoint made here')
    return sorted(done)


def _cap_test_proposals(model_cfg: dict) -> bool:
    """Cut the test-time proposals of a two-stage ``model_cfg`` to keep
    proposals x classes within :data:`MAX_NMS_CANDIDATES`; whether it
    did."""
    rpn = (model_cfg.get('test_cfg') or {}).get('rpn') or {}
    bbox_heads = (model_cfg.get('roi_head') or {}).get('bbox_head') or []
    if isinstance(bbox_heads, dict):
        bbox_heads = [bbox_heads]
    num_classes = max([head.get('num_classes', 0) for head in bbox_heads],
                      default=0)
    proposals = rpn.get('max_per_img', 0)
    if not num_classes or proposals * num_classes <= MAX_NMS_CANDIDATES:
        return False
    rpn['max_per_img'] = max(1, MAX_NMS_CANDIDATES // num_classes)
    return True


def _teacher_config(path: str) -> Config:
    """The teacher config at ``path``, or where it does not exist and names
    a file of an mmdet checkout (``configs/gfl/x.py``), the installed
    mmdet's copy of it."""
    if not osp.isfile(path) and path.startswith(CHECKOUT_CONFIGS):
        return get_config('mmdet::' + path[len(CHECKOUT_CONFIGS):])
    return Config.fromfile(path)


def _save_teacher(model_cfg: dict, item: dict, key: str, work_dir: str) -> str:
    """Build the model of ``model_cfg`` without loading ``item[key]``, save
    the state of its ``teacher_model`` in ``work_dir`` and return the
    path."""
    unloaded = copy.deepcopy(model_cfg)
    for candidate in nested_dicts(unloaded):
        if candidate.get(key) == item[key]:
            candidate[key] = None
    teacher = getattr(MODELS.build(unloaded), 'teacher_model', None)
    if teacher is None:
        raise NotRunnable(f'loads trained weights at build time '
                          f'({key}={item[key]}) into a model without a '
                          f'teacher_model')
    path = osp.join(work_dir, f'{key}.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    return path


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
    package = missing_package(error)
    if package:
        note = PACKAGE_NOTES.get(package, 'not installed')
        return f'needs the {package} package: {note}'
    return None
