# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What ``tools/train.py`` and ``tools/test.py`` do with their arguments.

The tools only parse the command line (with mmdet 3.3.0's flags, plus
``--yolor``); turning those choices into an mmengine config and running it
lives here, where tests can import it.
"""
import argparse
import copy
import os
import os.path as osp
import re
import sys
from contextlib import contextmanager
from typing import Optional

from mmdet.engine.hooks.utils import trigger_visualization_hook
from mmdet.evaluation import DumpDetResults
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .analysis.prediction_files import keep_predictions, predictions_prefix
from .checks import check_inputs, find_resumable_checkpoint
from .compat import applied_fixes_summary
from .engine.distributed import end_distributed, setup_distributed
from .engine.mixed_precision import check_amp_available
from .errors import InputError
from .toggle import YOLOR_PARTS, yolorize

# Hooks every training run gets (see mmdet_yolor/engine/hooks.py).
DEFAULT_TRAIN_HOOKS = ('EpochSeedHook', 'NonFiniteLossHook')


def add_yolor_argument(parser: argparse.ArgumentParser,
                       help: str,
                       default: Optional[str] = None) -> None:
    """``--yolor [PART]``: a key of ``YOLOR_PARTS``; a bare ``--yolor`` means
    ``all`` unless a ``default`` is given (then the option needs a value)."""
    optional = dict(nargs='?', const='all') if default is None else {}
    parser.add_argument(
        '--yolor',
        default=default,
        choices=sorted(YOLOR_PARTS),
        help=help,
        **optional)


def add_cfg_options_argument(parser: argparse.ArgumentParser) -> None:
    """mmdet's ``--cfg-options key=value ...``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed. Applied before --yolor.')


def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """mmdet's ``--launcher`` and ``--local-rank`` (passed by
    ``torch.distributed.launch``; torchrun sets ``LOCAL_RANK``)."""
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def set_local_rank(args: argparse.Namespace) -> None:
    """Export ``--local-rank`` as ``LOCAL_RANK`` unless a launcher did."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))


def load_config(config: str,
                cfg_options: Optional[dict] = None,
                yolor: Optional[str] = None) -> Config:
    """Load ``config``, merge ``cfg_options`` into it and, if ``yolor`` names
    a part of :data:`YOLOR_PARTS`, rewrite it with :func:`yolorize`."""
    if not osp.isfile(config):
        raise InputError(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if yolor:
        if yolor not in YOLOR_PARTS:
            raise InputError(f'--yolor takes one of {tuple(YOLOR_PARTS)}, '
                             f'got {yolor!r}')
        cfg = yolorize(cfg, **YOLOR_PARTS[yolor])
    return cfg


def default_work_dir(config: str, yolor: Optional[str] = None) -> str:
    """``./work_dirs/<config name>``, as mmdet, with ``_yolor`` (or
    ``_yolor-<part>``: ``fa``, ``pr``, ``foldable``) appended when
    ``--yolor`` rewrote it, so the baseline's work dir is never
    overwritten."""
    name = osp.splitext(osp.basename(config))[0]
    if yolor:
        name += '_yolor' if yolor == 'all' else f'_yolor-{yolor}'
    return osp.join('./work_dirs', name)


def _set_common(cfg: Config, config: str, work_dir: Optional[str],
                launcher: str, yolor: Optional[str]) -> None:
    cfg.launcher = launcher
    # work_dir priority as mmdet: CLI > config > config file name
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = default_work_dir(config, yolor)


def prepare_train_config(config: str,
                         work_dir: Optional[str] = None,
                         resume: Optional[str] = None,
                         amp: bool = False,
                         auto_scale_lr: bool = False,
                         cfg_options: Optional[dict] = None,
                         launcher: str = 'none',
                         yolor: Optional[str] = None) -> Config:
    """Return the training config that ``tools/train.py`` runs: ``config``
    with the options applied, the default hooks added, and every validation
    ``CocoMetric`` keeping its predictions in the work dir
    (:func:`~mmdet_yolor.analysis.prediction_files.keep_predictions`).

    Args:
        config (str): Config file path.
        work_dir (str, optional): Directory for logs and checkpoints.
        resume (str, optional): ``'auto'`` resumes from the latest checkpoint
            in the work dir, a path resumes from that checkpoint.
        amp (bool): Train with automatic mixed precision.
        auto_scale_lr (bool): Scale the learning rate by the total batch
            size (the config needs ``auto_scale_lr.base_batch_size``).
        cfg_options (dict, optional): Overrides merged into the config.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        yolor (str, optional): Apply :func:`yolorize` with one of the parts
            of :data:`~mmdet_yolor.toggle.YOLOR_PARTS`: ``'all'``, ``'fa'``
            (feature alignment only), ``'pr'`` (prediction refinement only)
            or ``'foldable'`` (both, in the placement that folds away).
    """
    cfg = load_config(config, cfg_options, yolor)
    _set_common(cfg, config, work_dir, launcher, yolor)
    if amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
            raise InputError(
                f'--auto-scale-lr needs auto_scale_lr.base_batch_size in '
                f'{config} (e.g. auto_scale_lr = dict(enable=False, '
                f'base_batch_size=16))')
        cfg.auto_scale_lr.enable = True
    # resume priority as mmdet: an explicit checkpoint > auto-resume
    if resume == 'auto':
        found = find_resumable_checkpoint(cfg.work_dir)
        print_log(found['note'], logger='current')
        cfg.resume = found['checkpoint'] is not None
        cfg.load_from = found['checkpoint']
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    if cfg.get('val_evaluator') is not None:
        cfg.val_evaluator = keep_predictions(
            cfg.val_evaluator, predictions_prefix(cfg.work_dir, 'val'))
    hooks = list(cfg.get('custom_hooks', []))
    present = {hook.get('type') for hook in hooks}
    cfg.custom_hooks = hooks + [
        dict(type=hook) for hook in DEFAULT_TRAIN_HOOKS if hook not in present
    ]
    return cfg


def enable_tta(cfg: Config) -> None:
    """Wrap the model in its ``tta_model`` and test with ``tta_pipeline``.

    Configs without them get mmdet's defaults: horizontal-flip TTA merged by
    NMS at IoU 0.5.
    """
    if 'tta_model' not in cfg:
        cfg.tta_model = dict(
            type='DetTTAModel',
            tta_cfg=dict(
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
    if 'tta_pipeline' not in cfg:
        dataset = cfg.test_dataloader.dataset
        while 'dataset' in dataset:
            dataset = dataset['dataset']
        cfg.tta_pipeline = copy.deepcopy(dataset.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[
                dict(type='RandomFlip', prob=1.),
                dict(type='RandomFlip', prob=0.)
            ],
                        [
                            dict(
                                type='PackDetInputs',
                                meta_keys=('img_id', 'img_path', 'ori_shape',
                                           'img_shape', 'scale_factor', 'flip',
                                           'flip_direction'))
                        ]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def prepare_test_config(config: str,
                        checkpoint: str,
                        work_dir: Optional[str] = None,
                        show: bool = False,
                        show_dir: Optional[str] = None,
                        wait_time: float = 2,
                        tta: bool = False,
                        cfg_options: Optional[dict] = None,
                        launcher: str = 'none',
                        yolor: Optional[str] = None) -> Config:
    """Return the test config that ``tools/test.py`` runs, its
    ``CocoMetric`` keeping the predictions in the work dir; the arguments
    are those of :func:`prepare_train_config` and mmdet's
    ``tools/test.py``."""
    cfg = load_config(config, cfg_options, yolor)
    _set_common(cfg, config, work_dir, launcher, yolor)
    cfg.load_from = checkpoint
    if cfg.get('test_evaluator') is not None:
        cfg.test_evaluator = keep_predictions(
            cfg.test_evaluator, predictions_prefix(cfg.work_dir, 'test'))
    if show or show_dir:
        trigger_visualization_hook(
            cfg, ConfigDict(show=show, show_dir=show_dir, wait_time=wait_time))
    if tta:
        enable_tta(cfg)
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the runner of ``cfg`` (``runner_type`` if set), after making a
    multi-process run work on machines without CUDA; its log says which
    stack fixes the process applied."""
    setup_cache_size_limit_of_dynamo()
    setup_distributed(cfg)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    runner.logger.info(applied_fixes_summary())
    return runner


def train(cfg: Config) -> Runner:
    """Check the inputs of ``cfg``, then train with it; return the
    runner."""
    check_amp_available(cfg.get('optim_wrapper'))
    loaders = ['train_dataloader']
    if cfg.get('val_cfg'):
        loaders.append('val_dataloader')
    check_inputs(cfg, loaders)
    runner = build_runner(cfg)
    runner.train()
    end_distributed(runner)
    return runner


def test(cfg: Config, out: Optional[str] = None) -> dict:
    """Check the inputs of ``cfg``, then test with it; return the metrics.
    ``out`` dumps the predictions to a pickle file."""
    if out is not None and not out.endswith(('.pkl', '.pickle')):
        raise InputError(f'--out must name a .pkl file, got {out}')
    check_inputs(cfg, ['test_dataloader'])
    runner = build_runner(cfg)
    if out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    metrics = runner.test()
    end_distributed(runner)
    return metrics


@contextmanager
def exit_on_input_error():
    """Run a tool's main; a wrong input ends it with its message as the last
    line and exit status 1, without a traceback.

    Wrong inputs are :class:`InputError` (raised by the checks of this
    package), a missing file, a non-finite loss (``NonFiniteLossHook``) and
    an image mmcv cannot decode.
    """
    try:
        yield
    except (InputError, FileNotFoundError, FloatingPointError) as error:
        _exit_with(str(error))
    except AssertionError as error:
        # mmcv's LoadImageFromFile, also when re-raised from a worker
        image = re.search(r'failed to load image: (\S+)', str(error))
        if image is None:
            raise
        _exit_with(f'image {image.group(1)} could not be decoded (corrupt or '
                   f'not an image file); replace it or remove it from the '
                   f'annotation file')


def _exit_with(message: str) -> None:
    print(f'error: {message}', file=sys.stderr, flush=True)
    sys.exit(1)
