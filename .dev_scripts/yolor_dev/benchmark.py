# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What YOLOR costs: baseline vs YOLOR vs YOLOR folded, measured in one run.

Parameters, FLOPs (mmengine's ``FlopAnalyzer``), inference latency (warm-up,
then the median of repeats), training-step time and peak memory; with
``compile``, also the latency of each network (its raw ``mode='tensor'``
outputs, where YOLOR adds its operations; post-processing is the same for
all) eager and under ``torch.compile``, and what dynamo made of it (frames,
graph breaks, recompiles). Timed variants take turns in every round, so
slow drifts of a noisy machine hit them alike. The three models share the
baseline's weights and YOLOR's implicits sit at the identity (add 0,
multiply by 1: the operations run, the values are the baseline's), so a
two-stage detector's RPN keeps the same proposals in each and
post-processing such as NMS sees the same boxes: what differs is YOLOR's
cost alone.

Small inputs (``image_size=128``, ``batch_size=1``) show the regime of a
GPU, where kernels are fast and per-call Python work (the wrappers'
``forward``, level bookkeeping) is what a model adds.
"""
import copy
import json
import multiprocessing
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from torch import nn

from mmdet_yolor.config_edits import strip_pretrained
from mmdet_yolor.deploy import fuse_implicit
from mmdet_yolor.models import implicit_layers
from mmdet_yolor.toggle import YOLOR_PARTS, is_yolorized, unyolorize, yolorize

from .compiling import CompileCounts, count_compilation

BASELINE, YOLOR, FOLDED = 'baseline', 'YOLOR', 'YOLOR folded'


@dataclass
class BenchmarkSettings:
    """How to measure.

    Attributes:
        image_size (int): Side of the square input images.
        batch_size (int): Images per step.
        warmup (int): Untimed steps before timing.
        repeats (int): Timed steps of each variant (the median is kept).
        device (str): ``'cpu'`` or ``'cuda'``.
        yolor (str): The YOLOR variant of a baseline config: a key of
            ``mmdet_yolor.toggle.YOLOR_PARTS``.
        compile (str, optional): Also time each network (``mode='tensor'``)
            eager and compiled with ``torch.compile(backend=compile)``
            (``'inductor'``, the default of torch), in the same rounds.
            None: no network timings.
    """
    image_size: int = 320
    batch_size: int = 2
    warmup: int = 2
    repeats: int = 10
    device: str = 'cpu'
    yolor: str = 'all'
    compile: Optional[str] = None


@dataclass
class VariantResult:
    """Measurements of one variant; times in milliseconds, memory in MiB.
    Training figures are None for the folded model (inference only), the
    compiled ones None without ``compile``.

    Attributes:
        network_ms (float, optional): Latency of the network alone
            (``mode='tensor'``), eager.
        compiled_network_ms (float, optional): The same under
            ``torch.compile``.
        compile_counts (CompileCounts, optional): Frames, graph breaks and
            recompiles of the compiled network (counted with the ``eager``
            backend, which finds the same ones).
    """
    name: str
    params: int
    flops: int
    inference_ms: float
    train_step_ms: Optional[float]
    peak_memory_mib: Optional[float]
    network_ms: Optional[float] = None
    compiled_network_ms: Optional[float] = None
    compile_counts: Optional[CompileCounts] = None


def variant_configs(cfg: Config, yolor: str = 'all') -> Dict[str, Config]:
    """The baseline and YOLOR configs of ``cfg``, which may be either."""
    if is_yolorized(cfg):
        return {BASELINE: unyolorize(cfg), YOLOR: cfg}
    return {BASELINE: cfg, YOLOR: yolorize(cfg, **YOLOR_PARTS[yolor])}


def _quiet_logs() -> None:
    """Keep mmengine's per-parameter initialisation and paramwise-option
    messages (thousands of lines; warnings for every frozen parameter of a
    caffe-style backbone) out of the printed table: they go to the current
    logger, which this makes an ERROR-level one."""
    MMLogger.get_instance('mmdet_yolor.benchmark', log_level='ERROR')


def _without_pretrained(model_cfg):
    """No weights can be downloaded here: initialise from scratch."""
    model_cfg = copy.deepcopy(model_cfg)
    strip_pretrained(model_cfg)
    return model_cfg


def build_variants(configs: Dict[str, Config],
                   device: str) -> Dict[str, nn.Module]:
    """Build baseline, YOLOR (with the baseline's weights and its implicits
    at the identity: its operations run, and it computes the baseline's
    boxes) and YOLOR folded (a folded copy of YOLOR)."""
    torch.manual_seed(0)
    baseline = MODELS.build(_without_pretrained(configs[BASELINE].model))
    baseline.init_weights()
    yolor = MODELS.build(_without_pretrained(configs[YOLOR].model))
    yolor.init_weights()
    yolor.load_state_dict(baseline.state_dict(), strict=False)
    for implicit in implicit_layers(yolor).values():
        implicit.make_identity()
    folded = fuse_implicit(copy.deepcopy(yolor).eval(), logger='silent')
    models = {BASELINE: baseline, YOLOR: yolor, FOLDED: folded}
    return {name: model.to(device) for name, model in models.items()}


def make_batch(model: nn.Module, settings: BenchmarkSettings,
               training: bool) -> dict:
    """A preprocessed batch of random images with 5 random boxes (and masks)
    each, as mmdet's own tests build it; every box has label 1, which every
    detector with at least 2 classes knows."""
    shape = (3, settings.image_size, settings.image_size)
    packed = demo_mm_inputs(
        batch_size=settings.batch_size,
        image_shapes=[shape] * settings.batch_size,
        num_items=[5] * settings.batch_size,
        num_classes=2,
        with_mask=True,
        device=settings.device)
    return model.data_preprocessor(packed, training)


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def interleaved_median_ms(steps: Dict[str, Callable[[], None]],
                          settings: BenchmarkSettings) -> Dict[str, float]:
    """Time each step function ``repeats`` times, the variants taking turns
    in every round after ``warmup`` untimed rounds; median milliseconds.
    The order of the turns rotates from round to round, so that no variant
    always runs right after the same other one."""
    times = {name: [] for name in steps}
    names = list(steps)
    for round_index in range(settings.warmup + settings.repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            step = steps[name]
            _sync(settings.device)
            start = time.perf_counter()
            step()
            _sync(settings.device)
            if round_index >= settings.warmup:
                times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}


class _TensorForward(nn.Module):
    """``model(inputs)`` in tensor mode with fixed data samples, for the FLOP
    counter and ``torch.compile`` (two-stage detectors need the image
    metas)."""

    def __init__(self, model: nn.Module, data_samples) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs):
        return self.model(inputs, self.data_samples, mode='tensor')


def count_flops(model: nn.Module, data: dict) -> int:
    analyzer = FlopAnalyzer(
        _TensorForward(model, data['data_samples']), (data['inputs'], ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analyzer.total())


def _train_step(model: nn.Module, optim_wrapper, data: dict):

    def step():
        losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    return step


def _peak_memory_probe(cfg_text: str, settings: BenchmarkSettings, queue):
    """In a fresh process: a few training steps of one model, then the
    process's peak resident memory (MiB)."""
    register_all_modules()
    import mmdet_yolor  # noqa: F401  (registers the YOLOR modules)
    _quiet_logs()
    cfg = Config.fromstring(cfg_text, '.py')
    model = MODELS.build(_without_pretrained(cfg.model)).to(settings.device)
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = make_batch(model, settings, training=True)
    for _ in range(2):
        _train_step(model, optim_wrapper, data)()
    if settings.device == 'cuda':
        queue.put(torch.cuda.max_memory_allocated() / 2**20)
    else:
        queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_memory_mib(cfg: Config, settings: BenchmarkSettings) -> float:
    """Peak memory of training ``cfg``'s model, measured in a separate
    process so that the variants do not share a high-water mark (CPU: peak
    resident set of that process; CUDA: peak allocated)."""
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    process = context.Process(
        target=_peak_memory_probe, args=(cfg.pretty_text, settings, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def run_benchmark(cfg: Config,
                  settings: BenchmarkSettings) -> List[VariantResult]:
    """Measure baseline, YOLOR and YOLOR folded for ``cfg`` (a baseline or a
    YOLOR config)."""
    _quiet_logs()
    configs = variant_configs(cfg, settings.yolor)
    models = build_variants(configs, settings.device)

    eval_data = make_batch(models[BASELINE], settings, training=False)
    for model in models.values():
        model.eval()
    steps = {
        name: partial(model, **eval_data, mode='predict')
        for name, model in models.items()
    }
    counts = {}
    if settings.compile:
        # a module, not a partial: torch 2.1's dynamo breaks the graph on
        # calling a functools.partial
        networks = {
            name: _TensorForward(model, eval_data['data_samples'])
            for name, model in models.items()
        }
        counts = {
            name: count_compilation(network, eval_data['inputs'])
            for name, network in networks.items()
        }
        for name, network in networks.items():
            compiled = torch.compile(network, backend=settings.compile)
            steps[_network(name)] = partial(network, eval_data['inputs'])
            steps[_network(name,
                           compiled=True)] = partial(compiled,
                                                     eval_data['inputs'])
    with torch.no_grad():
        latency = interleaved_median_ms(steps, settings)
        flops = {
            name: count_flops(model, eval_data)
            for name, model in models.items()
        }

    train_data = make_batch(models[BASELINE], settings, training=True)
    steps = {}
    for name in (BASELINE, YOLOR):
        models[name].train()
        optim_wrapper = build_optim_wrapper(models[name],
                                            configs[name].optim_wrapper)
        steps[name] = _train_step(models[name], optim_wrapper, train_data)
    train = interleaved_median_ms(steps, settings)
    memory = {
        name: peak_memory_mib(configs[name], settings)
        for name in (BASELINE, YOLOR)
    }
    return [
        VariantResult(name, sum(p.numel() for p in model.parameters()),
                      flops[name], latency[name], train.get(name),
                      memory.get(name), latency.get(_network(name)),
                      latency.get(_network(name, compiled=True)),
                      counts.get(name)) for name, model in models.items()
    ]


def _network(name: str, compiled: bool = False) -> str:
    """The name of a variant's timed network, eager or compiled."""
    return f'{name} network' + (' compiled' if compiled else '')


def _with_ratio(text: str, value: Optional[float],
                base: Optional[float]) -> str:
    return text if base is None else f'{text} ({value / base:.3f}x)'


def format_table(results: List[VariantResult]) -> str:
    """Markdown table; the rows after the baseline carry ratios to it. With
    network timings, three more columns: the network eager and compiled,
    and frames / graph breaks / recompiles of the compiled one."""
    base = results[0]
    compiled = base.compiled_network_ms is not None
    lines = [
        '| model | params | GFLOPs | inference | train step | peak memory |' +
        (' network | network compiled | frames / breaks / recompiles |'
         if compiled else ''),
        '| :-- | --: | --: | --: | --: | --: |' +
        (' --: | --: | --: |' if compiled else ''),
    ]
    for result in results:
        ref = None if result is base else base
        cells = [
            _with_ratio(f'{result.params:,}', result.params, ref
                        and ref.params),
            _with_ratio(f'{result.flops / 1e9:.2f}', result.flops, ref
                        and ref.flops),
            _with_ratio(f'{result.inference_ms:.1f} ms', result.inference_ms,
                        ref and ref.inference_ms),
        ]
        for value, base_value, unit in ((result.train_step_ms,
                                         base.train_step_ms, 'ms'),
                                        (result.peak_memory_mib,
                                         base.peak_memory_mib, 'MiB')):
            cells.append('-' if value is None else _with_ratio(
                f'{value:,.1f} {unit}', value, ref and base_value))
        if compiled:
            counts = result.compile_counts
            cells += [
                _with_ratio(f'{value:.1f} ms', value, ref and base_value)
                for value, base_value in ((result.network_ms, base.network_ms),
                                          (result.compiled_network_ms,
                                           base.compiled_network_ms))
            ]
            cells.append(f'{counts.frames} / {counts.graph_breaks} / '
                         f'{counts.recompiles}')
        lines.append(f'| {result.name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def dump_json(results: Sequence, settings, path: str) -> None:
    """Write a benchmark's settings and results (dataclasses) to ``path``
    as JSON."""
    with open(path, 'w') as f:
        json.dump(
            dict(
                settings=asdict(settings),
                results=[asdict(result) for result in results]),
            f,
            indent=2)
