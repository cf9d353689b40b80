# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""One run on a GPU machine: what YOLOR costs and whether it holds there.

For each seed detector (FCOS, ATSS, Faster R-CNN, Mask R-CNN, Sparse R-CNN,
their R-50 seed configs, mmdet's input size, batch 2), YOLOR against the
baseline: training-step time in fp32 and AMP (fp16, bf16) and peak GPU
memory; network time (``mode='tensor'``) unfolded, folded and under
``torch.compile``; folded-vs-unfolded parity on the device; mmcv's CUDA
NMS and RoIAlign against its CPU ones; with two GPUs, a 2-process nccl
``tools/dist_train.sh`` run.

Sections run in that order, cheapest and most needed first, each within
what is left of a time budget; the report (``gpu_check.md``, one table,
and ``gpu_check.json``) is rewritten after every section, so a run cut
short still reports what it measured. Until mmcv's CUDA ops are built
(last, :mod:`.mmcv_cuda_subset`), a CUDA run uses stand-ins with the same
semantics (:func:`cuda_standins`): torchvision's RoIAlign (mmcv's
``RoIAlign(use_torchvision=True)``) and NMS, and mmdet's own pure-torch
focal loss; baseline and YOLOR run the same ones, so the ratios hold.

``device='cpu', quick=True`` runs the same code on shrunk models (ResNet-18
with 16 stem channels, 64-pixel images, one timed step), which
tests/test_dev_scripts/test_gpu_check.py runs so that this never rots.
"""
import copy
import importlib
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterator, List, Optional

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner.amp import autocast
from torch import nn

from mmdet_yolor.analysis.stages import stage_outputs
from mmdet_yolor.config_edits import nested_dicts
from mmdet_yolor.deploy import fuse_implicit
from mmdet_yolor.models import implicit_layers
from mmdet_yolor.package_data import get_config

from .benchmark import (BASELINE, FOLDED, YOLOR, BenchmarkSettings,
                        _quiet_logs, _TensorForward, _without_pretrained,
                        build_variants, interleaved_median_ms, variant_configs)
from .shrinking import cap_two_stage_sampling

DETECTORS = {
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'atss/atss_r50_fpn_1x_coco.py',
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn': 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'sparse_rcnn': 'sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py',
}
SECTIONS = ('environment', 'train', 'inference', 'fold_parity', 'compile',
            'cuda_ops', 'distributed')
PRECISIONS = ('fp32', 'fp16', 'bf16')
# folded vs unfolded, relative to each stage's largest value, in float32
# with TF32 off (convs and matmuls in full float32)
FOLD_RTOL = 1e-4
# mmcv's CUDA ops vs its CPU ones, float32
OPS_ATOL = 1e-4
# Seconds a section must leave to those after it when it starts a detector
# (estimates for an H100 at full size: a detector's training steps take
# some 20 s, its inference and fold 10 s, its three inductor compiles
# minutes; the CUDA subset builds in one to two minutes); a detector started
# later is reported as skipped.
RESERVE_S = dict(train=180, inference=140, fold_parity=110, compile=330)


@dataclass
class GPUCheckSettings:
    """What to run.

    Attributes:
        device (str): ``'cuda'`` or ``'cpu'``.
        quick (bool): Shrunk models and tiny inputs (the CPU rehearsal).
        out (str): Folder for ``gpu_check.md`` and ``gpu_check.json``.
        budget_s (float): Seconds the whole run may take; a section that
            would start after that is reported as skipped.
        detectors (list[str]): Keys of :data:`DETECTORS`.
        mmcv_src (str, optional): mmcv 2.1.0's source tree, for the CUDA
            subset (section ``cuda_ops``).
        sections (list[str]): Keys of :data:`SECTIONS` to run, in their
            order there.
    """
    device: str = 'cuda'
    quick: bool = False
    out: str = 'work_dirs/gpu_check'
    budget_s: float = 600.
    detectors: List[str] = field(default_factory=lambda: list(DETECTORS))
    mmcv_src: Optional[str] = None
    sections: List[str] = field(default_factory=lambda: list(SECTIONS))

    @property
    def image_shape(self):
        # mmdet's test size of these configs: 1333x800, padded to 32
        return (64, 96) if self.quick else (800, 1344)

    def benchmark(self) -> BenchmarkSettings:
        return BenchmarkSettings(
            batch_size=2,
            warmup=1 if self.quick else 3,
            repeats=1 if self.quick else 10,
            device=self.device)


class Report:
    """Sections' results, written to ``out`` as they come."""

    def __init__(self, settings: GPUCheckSettings) -> None:
        self.settings = settings
        self.start = time.monotonic()
        self.sections: Dict[str, dict] = {}
        os.makedirs(settings.out, exist_ok=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.settings.budget_s - self.elapsed()

    def add(self, name: str, result: dict) -> None:
        result.setdefault('status', 'ok')
        result['ended_s'] = round(self.elapsed(), 1)
        self.sections[name] = result
        self.write()

    def write(self) -> None:
        payload = dict(
            settings=asdict(self.settings),
            elapsed_s=round(self.elapsed(), 1),
            sections=self.sections)
        path = osp.join(self.settings.out, 'gpu_check.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(payload, f, indent=2, default=str)
        os.replace(path + '.tmp', path)
        with open(osp.join(self.settings.out, 'gpu_check.md'), 'w') as f:
            f.write(format_markdown(payload))


# --- stand-ins for mmcv's CUDA ops, until they are built ----------------


def _torch_sigmoid_focal_loss(pred, target, gamma, alpha, weight, reduction):
    """mmcv's ``sigmoid_focal_loss`` (unreduced, labels as indices, the
    background index ``num_classes``) in plain torch, as mmdet's
    ``py_sigmoid_focal_loss`` computes it."""
    assert weight is None and reduction == 'none'
    num_classes = pred.size(1)
    one_hot = nn.functional.one_hot(target, num_classes + 1)
    target = one_hot[:, :num_classes].type_as(pred)
    prob = pred.sigmoid()
    pt = (1 - prob) * target + prob * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) *
                    (1 - target)) * pt.pow(gamma)
    return nn.functional.binary_cross_entropy_with_logits(
        pred, target, reduction='none') * focal_weight


def _torchvision_nms(boxes, scores, iou_threshold, offset=0, **kwargs):
    """mmcv's ``nms`` (``dets, inds``) through torchvision's."""
    import torchvision
    assert offset == 0 and not kwargs, 'stand-in covers offset=0 only'
    inds = torchvision.ops.nms(boxes.float(), scores.float(),
                               float(iou_threshold))
    dets = torch.cat((boxes[inds], scores[inds].reshape(-1, 1)), dim=1)
    return dets, inds


@contextmanager
def cuda_standins(enabled: bool) -> Iterator[List[str]]:
    """While the block runs, mmcv's CUDA-only NMS and mmdet's mmcv focal
    loss are replaced by equals that need no mmcv CUDA kernel; yields what
    was replaced."""
    if not enabled:
        yield []
        return
    import mmdet.models.losses.focal_loss as focal_loss

    # the module: `import mmcv.ops.nms as m` gives mmcv.ops' function nms
    mmcv_nms = importlib.import_module('mmcv.ops.nms')
    saved = (mmcv_nms.nms, focal_loss._sigmoid_focal_loss)
    # batched_nms looks its op up in mmcv.ops.nms at call time
    mmcv_nms.nms = _torchvision_nms
    focal_loss._sigmoid_focal_loss = _torch_sigmoid_focal_loss
    try:
        yield [
            'mmcv nms -> torchvision.ops.nms',
            'mmcv sigmoid_focal_loss -> torch (as py_sigmoid_focal_loss)',
            'mmcv RoIAlign -> use_torchvision=True'
        ]
    finally:
        mmcv_nms.nms, focal_loss._sigmoid_focal_loss = saved


def use_torchvision_roi_align(cfg: Config) -> None:
    """mmcv's ``RoIAlign`` runs torchvision's (in place)."""
    for node in nested_dicts([cfg.model]):
        layer = node.get('roi_layer')
        if isinstance(layer, dict) and layer.get('type') == 'RoIAlign':
            layer.use_torchvision = True


# --- models ---------------------------------------------------------------


def shrink(cfg: Config) -> Config:
    """ResNet-18 with 16 stem channels from scratch, and two-stage
    detectors keeping 100 proposals (Sparse R-CNN 20) and sampling 64 RoIs
    per image (quick
    runs; RoIAlign is slow on the CPU). In place; returns ``cfg``."""
    model = cfg.model
    cap_two_stage_sampling(model)
    if 'num_proposals' in model.get('rpn_head', {}):  # Sparse R-CNN
        model.rpn_head.num_proposals = 20
    model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    neck = model.neck.neck if model.neck.get('type') == 'YOLORNeck' \
        else model.neck
    neck.in_channels = [16 * 2**i for i in range(4)]
    return cfg


def detector_configs(name: str, settings: GPUCheckSettings,
                     standins: bool) -> Dict[str, Config]:
    """Baseline and YOLOR configs of a seed detector."""
    cfg = get_config(DETECTORS[name])
    if settings.quick:
        shrink(cfg)
    if standins:
        use_torchvision_roi_align(cfg)
    return variant_configs(cfg)


def batch(model: nn.Module, settings: GPUCheckSettings, training: bool):
    """A preprocessed batch of 2 random images with 5 random boxes (and
    masks) each, as :func:`.benchmark.make_batch` makes them, at
    ``settings.image_shape``."""
    height, width = settings.image_shape
    packed = demo_mm_inputs(
        batch_size=2,
        image_shapes=[(3, height, width)] * 2,
        num_items=[5, 5],
        num_classes=2,
        with_mask=True,
        device=settings.device)
    return model.data_preprocessor(packed, training)


@torch.no_grad()
def spread_implicits(model: nn.Module, seed: int = 0) -> None:
    """Implicits (vector form) far from the identity, so a wrong fold
    shows."""
    generator = torch.Generator().manual_seed(seed)
    for layer in implicit_layers(model).values():
        value = layer.offset + 0.3 * torch.randn(
            layer.channels, generator=generator)
        layer.implicit.copy_(value.to(layer.implicit))


def _no_time_for(report: Report, section: str) -> bool:
    """Whether a detector started in ``section`` now would leave less than
    its reserve (:data:`RESERVE_S`) to the sections after it; quick runs
    have no reserves."""
    reserve = 0 if report.settings.quick else RESERVE_S[section]
    return report.left() < reserve


def _ratio(value, base):
    if value is None or base in (None, 0):
        return None
    return round(value / base, 3)


def _sync(device):
    if device == 'cuda':
        torch.cuda.synchronize()


# --- sections -------------------------------------------------------------


def environment(settings: GPUCheckSettings) -> dict:
    import mmcv
    import mmdet
    import mmengine
    info = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        mmengine=mmengine.__version__,
        mmdet=mmdet.__version__,
        device=settings.device,
        cuda=torch.version.cuda)
    if settings.device == 'cuda':
        info.update(
            gpus=torch.cuda.device_count(),
            gpu=torch.cuda.get_device_name(0),
            capability='.'.join(map(str, torch.cuda.get_device_capability())))
    return info


def _amp_wrapper(cfg: Config, precision: str, device: str) -> dict:
    optim_wrapper = copy.deepcopy(cfg.optim_wrapper)
    if precision != 'fp32' and device == 'cuda':
        optim_wrapper.update(
            type='AmpOptimWrapper',
            dtype='float16' if precision == 'fp16' else 'bfloat16',
            loss_scale='dynamic')
    return optim_wrapper


def _train_step(model, optim_wrapper, data, precision, device):
    """One step as mmengine's ``train_step``; on the CPU, bf16 through
    mmengine's autocast (AmpOptimWrapper asserts an accelerator)."""
    cpu_bf16 = device == 'cpu' and precision == 'bf16'

    def step():
        with optim_wrapper.optim_context(model), (autocast(
                device_type='cpu', dtype=torch.bfloat16) if cpu_bf16 else
                                                  nullcontext()):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    return step


def train(settings: GPUCheckSettings, report: Report, standins: bool) -> dict:
    """Training-step ms per detector, precision and variant; YOLOR as a
    ratio; peak GPU memory (fp32)."""
    rows = {}
    bench = settings.benchmark()
    for name in settings.detectors:
        if _no_time_for(report, 'train'):
            rows[name] = dict(status='skipped: out of time')
            continue
        configs = detector_configs(name, settings, standins)
        models = build_variants(configs, settings.device)
        data = batch(models[BASELINE], settings, training=True)
        row = {}
        for precision in PRECISIONS:
            if precision == 'fp16' and settings.device == 'cpu':
                row[precision] = dict(status='n/a on the CPU')
                continue
            steps, peaks = {}, {}
            try:
                for variant in (BASELINE, YOLOR):
                    model = models[variant].train()
                    wrapper = build_optim_wrapper(
                        model,
                        _amp_wrapper(configs[variant], precision,
                                     settings.device))
                    steps[variant] = _train_step(model, wrapper, data,
                                                 precision, settings.device)
                if settings.device == 'cuda':
                    # the step's own peak (activations, gradients, optimizer
                    # state) above what is resident: all three models
                    for variant, step in steps.items():
                        step()  # gradients and optimizer state exist
                        _sync('cuda')
                        resident = torch.cuda.memory_allocated()
                        torch.cuda.reset_peak_memory_stats()
                        step()
                        _sync('cuda')
                        peaks[variant] = round(
                            (torch.cuda.max_memory_allocated() - resident) /
                            2**20, 1)
                times = interleaved_median_ms(steps, bench)
            except Exception as error:  # report, go on with the next
                row[precision] = dict(status=f'error: {type(error).__name__}: '
                                      f'{str(error).splitlines()[0][:200]}')
                continue
            row[precision] = dict(
                baseline_ms=round(times[BASELINE], 2),
                yolor_ms=round(times[YOLOR], 2),
                ratio=_ratio(times[YOLOR], times[BASELINE]),
                baseline_peak_mib=peaks.get(BASELINE),
                yolor_peak_mib=peaks.get(YOLOR),
                peak_ratio=_ratio(peaks.get(YOLOR), peaks.get(BASELINE)))
        rows[name] = row
        del models
        if settings.device == 'cuda':
            torch.cuda.empty_cache()
        report.add('train', dict(status='partial', rows=rows))
    return dict(rows=rows)


def _networks(models, data):
    return {
        name: _TensorForward(model.eval(), data['data_samples'])
        for name, model in models.items()
    }


def inference(settings: GPUCheckSettings, report: Report,
              standins: bool) -> dict:
    """Network ms (``mode='tensor'``) of baseline, YOLOR and YOLOR
    folded."""
    rows = {}
    bench = settings.benchmark()
    for name in settings.detectors:
        if _no_time_for(report, 'inference'):
            rows[name] = dict(status='skipped: out of time')
            continue
        models = build_variants(
            detector_configs(name, settings, standins), settings.device)
        data = batch(models[BASELINE], settings, training=False)
        networks = _networks(models, data)
        steps = {
            variant: (lambda network=network: network(data['inputs']))
            for variant, network in networks.items()
        }
        with torch.no_grad():
            times = interleaved_median_ms(steps, bench)
        rows[name] = dict(
            baseline_ms=round(times[BASELINE], 2),
            yolor_ms=round(times[YOLOR], 2),
            folded_ms=round(times[FOLDED], 2),
            yolor_ratio=_ratio(times[YOLOR], times[BASELINE]),
            folded_ratio=_ratio(times[FOLDED], times[BASELINE]))
        report.add('inference', dict(status='partial', rows=rows))
    return dict(rows=rows)


@contextmanager
def full_float32():
    """Convs and matmuls in full float32 (no TF32), for exact parity."""
    saved = (torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = saved


def _max_relative(expected, actual) -> Dict[str, float]:
    worst = {}
    for stage in expected:
        worst[stage] = max(
            float((a.float() - e.float()).abs().max() /
                  e.float().abs().max().clamp(min=1e-12))
            for e, a in zip(expected[stage], actual[stage]))
    return worst


def fold_parity(settings: GPUCheckSettings, report: Report,
                standins: bool) -> dict:
    """Folded vs unfolded outputs stage by stage on the device (the RoI
    heads on the unfolded model's proposals), implicits far from the
    identity."""
    rows = {}
    for name in settings.detectors:
        if _no_time_for(report, 'fold_parity'):
            rows[name] = dict(status='skipped: out of time')
            continue
        yolor_cfg = detector_configs(name, settings, standins)[YOLOR]
        torch.manual_seed(0)
        model = MODELS.build(_without_pretrained(yolor_cfg.model))
        model.init_weights()
        spread_implicits(model)
        model = model.to(settings.device).eval()
        data = batch(model, settings, training=False)
        with full_float32():
            expected, proposals = stage_outputs(model, data)
            folded = fuse_implicit(copy.deepcopy(model), logger='silent')
            actual, _ = stage_outputs(folded, data, proposals)
        worst = _max_relative(expected, actual)
        rows[name] = dict(
            max_relative=worst,
            passed=all(value <= FOLD_RTOL for value in worst.values()))
        report.add('fold_parity', dict(status='partial', rows=rows))
    return dict(rows=rows, rtol=FOLD_RTOL)


def compile_times(settings: GPUCheckSettings, report: Report,
                  standins: bool) -> dict:
    """Network ms under ``torch.compile`` (inductor; ``eager`` in quick
    runs) of baseline, YOLOR and YOLOR folded, and the compile time."""
    backend = 'eager' if settings.quick else 'inductor'
    rows = {}
    bench = settings.benchmark()
    for name in settings.detectors:
        if _no_time_for(report, 'compile'):
            rows[name] = dict(status='skipped: out of time')
            continue
        models = build_variants(
            detector_configs(name, settings, standins), settings.device)
        data = batch(models[BASELINE], settings, training=False)
        steps, compile_s = {}, {}
        with torch.no_grad():
            for variant, network in _networks(models, data).items():
                compiled = torch.compile(network, backend=backend)
                start = time.perf_counter()
                compiled(data['inputs'])
                _sync(settings.device)
                compile_s[variant] = round(time.perf_counter() - start, 1)
                steps[variant] = (
                    lambda compiled=compiled: compiled(data['inputs']))
            times = interleaved_median_ms(steps, bench)
        rows[name] = dict(
            backend=backend,
            baseline_ms=round(times[BASELINE], 2),
            yolor_ms=round(times[YOLOR], 2),
            folded_ms=round(times[FOLDED], 2),
            yolor_ratio=_ratio(times[YOLOR], times[BASELINE]),
            folded_ratio=_ratio(times[FOLDED], times[BASELINE]),
            compile_s=compile_s)
        torch._dynamo.reset()
        report.add('compile', dict(status='partial', rows=rows))
    return dict(rows=rows)


def _random_boxes(count, size, generator):
    xy = torch.rand(count, 2, generator=generator) * size * 0.8
    wh = 4 + torch.rand(count, 2, generator=generator) * size * 0.3
    return torch.cat((xy, xy + wh), dim=1)


def cuda_ops(settings: GPUCheckSettings, report: Report) -> dict:
    """mmcv's CUDA NMS and RoIAlign (built for this GPU from mmcv's
    sources) against mmcv's CPU kernels, on random boxes and features."""
    from mmcv.ops import nms as mmcv_nms
    from mmcv.ops import roi_align as mmcv_roi_align

    from .mmcv_cuda_subset import build_subset
    if settings.device != 'cuda':
        return dict(status='n/a: needs --device cuda')
    if settings.mmcv_src is None:
        return dict(status='skipped: no mmcv source (--mmcv-src)')
    start = time.perf_counter()
    # outside out: the device tool returns a few files of it only
    ops = build_subset(settings.mmcv_src,
                       osp.join(tempfile.gettempdir(), 'mmcv_cuda_subset'))
    build_s = round(time.perf_counter() - start, 1)
    generator = torch.Generator().manual_seed(0)
    boxes = _random_boxes(2000, 800, generator)
    scores = torch.rand(2000, generator=generator)
    keep_cpu = mmcv_nms(boxes, scores, 0.5)[1]
    keep_cuda = ops.nms(boxes.cuda(), scores.cuda(), 0.5, 0).cpu()
    # mmcv's CUDA launcher returns indices in the order of the scores
    nms_equal = torch.equal(keep_cpu.sort().values, keep_cuda.sort().values)

    features = torch.randn(2, 64, 50, 84, generator=generator)
    rois = torch.cat((torch.randint(0, 2,
                                    (256, 1), generator=generator).float(),
                      _random_boxes(256, 400, generator)),
                     dim=1)
    expected = mmcv_roi_align(features, rois, (7, 7), 0.125, 2, 'avg', True)
    output = torch.zeros(256, 64, 7, 7, device='cuda')
    argmax = torch.zeros(0, device='cuda')
    ops.roi_align_forward(features.cuda(), rois.cuda(), output, argmax, argmax,
                          7, 7, 0.125, 2, 1, True)
    roi_error = float((output.cpu() - expected).abs().max())
    return dict(
        build_s=build_s,
        nms_kept=int(keep_cpu.numel()),
        nms_equal_to_cpu=nms_equal,
        roi_align_max_abs_error=roi_error,
        passed=nms_equal and roi_error <= OPS_ATOL)


def distributed(settings: GPUCheckSettings, report: Report) -> dict:
    """A 2-process nccl ``tools/dist_train.sh`` run of the shapes demo
    (FCOS R-18, a few iterations), on machines with 2 GPUs or more."""
    gpus = torch.cuda.device_count() if settings.device == 'cuda' else 0
    if gpus < 2:
        return dict(status=f'skipped: needs 2 GPUs, found {gpus}')
    from mmdet_yolor.package_data import config_path, tool_path
    work_dir = osp.join(tempfile.gettempdir(), 'gpu_check_dist_train')
    command = [
        'bash',
        tool_path('dist_train.sh'),
        config_path('demo/fcos-yolor_r18_fpn_6e_shapes.py'), '2', '--work-dir',
        work_dir, '--cfg-options', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=100'
    ]
    start = time.perf_counter()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHON=sys.executable),
        timeout=max(report.left() - 10, 30))
    return dict(
        status='ok' if result.returncode == 0 else
        f'error: exit {result.returncode}: {result.stderr[-300:]}',
        seconds=round(time.perf_counter() - start, 1))


def run_gpu_check(settings: GPUCheckSettings) -> dict:
    """Run every section within the budget; return the report's
    sections."""
    _quiet_logs()
    report = Report(settings)
    standins = settings.device == 'cuda'
    sections: Dict[str, Callable[[], dict]] = dict(
        environment=lambda: environment(settings),
        train=lambda: train(settings, report, standins),
        inference=lambda: inference(settings, report, standins),
        fold_parity=lambda: fold_parity(settings, report, standins),
        compile=lambda: compile_times(settings, report, standins),
        cuda_ops=lambda: cuda_ops(settings, report),
        distributed=lambda: distributed(settings, report))
    for name in SECTIONS:
        if name not in settings.sections:
            continue
        if report.left() <= 0:
            report.add(name, dict(status='skipped: out of time'))
            continue
        try:
            with cuda_standins(standins and name != 'cuda_ops') as used:
                result = sections[name]()
            if used:
                result.setdefault('standins', used)
        except Exception as error:
            result = dict(status=f'error: {type(error).__name__}: '
                          f'{str(error).splitlines()[0][:300]}')
        report.add(name, result)
        print(
            f'[gpu_check] {name}: {result.get("status", "ok")} '
            f'({report.elapsed():.0f} s)',
            flush=True)
    return report.sections


# --- the report -----------------------------------------------------------


def _cell(value, unit='', ratio=None):
    if value is None:
        return '-'
    text = f'{value:,.1f}{unit}' if isinstance(value, float) else str(value)
    return text if ratio is None else f'{text} ({ratio:.3f}x)'


def format_markdown(payload: dict) -> str:
    """One markdown table: a row per detector, YOLOR's costs as ratios to
    the baseline; notes below it for the other sections."""
    sections = payload['sections']
    settings = payload['settings']
    header = ('| detector | train fp32 | train fp16 | train bf16 | '
              'step memory fp32 | network | folded | compiled | '
              'compiled folded | fold parity |')
    lines = [
        f'# gpu_check ({settings["device"]}'
        f'{", quick" if settings["quick"] else ""}, '
        f'{payload["elapsed_s"]:.0f} s)', '',
        'YOLOR vs baseline: YOLOR ms (YOLOR / baseline); step memory: a '
        'fp32 training step\'s peak GPU memory above the resident models, '
        'MiB; network: mode=\'tensor\'; '
        'fold parity: largest folded-vs-unfolded difference relative to '
        'the stage\'s largest value.', '', header, '| :-- |' + ' --: |' * 9
    ]
    rows = lambda section: sections.get(section, {}).get('rows', {})  # noqa
    for name in settings['detectors']:
        cells = []
        train_row = rows('train').get(name, {})
        for precision in PRECISIONS:
            entry = train_row.get(precision, {})
            cells.append(
                _cell(entry.get('yolor_ms'), ' ms', entry.get('ratio')
                      ) if 'yolor_ms' in entry else entry.get('status', '-'))
        fp32 = train_row.get('fp32', {})
        cells.append(
            _cell(fp32.get('yolor_peak_mib'), '', fp32.get('peak_ratio')))
        if 'status' in train_row:  # skipped
            cells = [train_row['status']] + ['-'] * 3
        infer = rows('inference').get(name, {})
        cells.append(
            _cell(infer.get('yolor_ms'), ' ms', infer.get('yolor_ratio')
                  ) if 'yolor_ms' in infer else infer.get('status', '-'))
        cells.append(
            _cell(infer.get('folded_ms'), ' ms', infer.get('folded_ratio')))
        compiled = rows('compile').get(name, {})
        cells.append(
            _cell(
                compiled.get('yolor_ms'), ' ms', compiled.get('yolor_ratio')
            ) if 'yolor_ms' in compiled else compiled.get('status', '-'))
        cells.append(
            _cell(
                compiled.get('folded_ms'), ' ms', compiled.get('folded_ratio')
            ) if 'folded_ms' in compiled else compiled.get('status', '-'))
        parity = rows('fold_parity').get(name, {})
        cells.append(
            parity.get('status', '-') if 'passed' not in parity else
            ('ok ' if parity['passed'] else 'FAIL ') +
            f'{max(parity["max_relative"].values()):.1e}')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    lines.append('')
    for name in SECTIONS:
        section = sections.get(name)
        if section is None:
            lines.append(f'- {name}: not run')
            continue
        extra = {
            key: value
            for key, value in section.items()
            if key not in ('rows', 'status', 'ended_s')
        }
        lines.append(f'- {name}: {section["status"]} '
                     f'(at {section["ended_s"]:.0f} s)' +
                     (f' {json.dumps(extra, default=str)}' if extra else ''))
    return '\n'.join(lines) + '\n'
