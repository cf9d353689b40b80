# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What the sweep can run on this CPU machine: the models in its scope, the
changes that let a config run here from scratch, and why a baseline that
fails cannot run here."""
import inspect
import re
from typing import List, Optional, Sequence, Tuple

from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmengine.config import Config

from ...config_edits import nested_dicts, strip_pretrained
from ...models.wrapping import init_parameter

SYNC_NORMS = ('SyncBN', 'MMSyncBN', 'NaiveSyncBN', 'TorchSyncBN')


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
