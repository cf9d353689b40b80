# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Checking one config, the sweep's row: the baseline and its YOLOR form
train on the same generated inputs, the YOLOR model predicts and is
folded, and the checks say whether the plugin did its job."""
import copy
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from ...deploy import FoldReport, fold_and_strip
from ...errors import InputError
from ...models import alignment_targets
from ...models.layers.implicit import is_implicit_parameter
from ...toggle import YOLOR_PARTS, yolorize
from ..stages import replay_proposals
from .agreement import (MIN_AGREEMENT, match_fraction, outputs_agree,
                        proposals_agree, raw_outputs)
from .heads import head_families, heads_predicting_nothing, refined_by_family
from .inputs import generate_samples, image_shapes, input_spec
from .machine import (NotRunnable, adapt_to_machine, check_in_scope,
                      not_runnable_reason)
from .probes import ImplicitProbe, OutputProbe, implicit_targets
from .settings import SweepSettings
from .steps import build_model, predict, train

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
            kept (:func:`~.agreement.match_fraction`,
            :func:`~.agreement.proposals_agree`).
        raw_outputs_agree (bool, optional): Whether folding kept the
            model's ``mode='tensor'`` outputs (scores and boxes before any
            top-k or NMS, within 1e-3); None without a tensor mode.
        notes (list[str]): What else the row should tell: gradients that
            were zero or excused, state-dict keys that differ.
        adaptations (list[str]): What was changed to run the config here.
        seconds (float): Run time of the row.
        torch (str): Version of the torch the row ran on (the sweep sets
            it; '' where it was not recorded).
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
    torch: str = ''


@dataclass
class Check:
    """One check of a row's YOLOR model.

    Attributes:
        name (str): What is checked.
        passed (bool, optional): Whether it passed; None where there was
            nothing to check.
        detail (str): What was found; for a failed check, the problem as
            the row's reason says it.
        required (bool): Whether a failure fails the row. Defaults to True.
    """
    name: str
    passed: Optional[bool]
    detail: str
    required: bool = True


# The names of the checks (Check.name).
LOSSES_FINITE = 'losses finite'
IMPLICITS_CALLED = 'every implicit called'
GRADIENTS_REACH = 'gradients reach the implicits'
PREDICTIONS_KEPT = 'folding keeps the predictions'
RAW_OUTPUTS_KEPT = 'folding keeps the raw outputs'


@dataclass
class ConfigCheck:
    """Everything :func:`check_config` found for one config.

    Attributes:
        row (SweepRow): Its row of the sweep.
        yolor (str): The YOLOR variant checked, a key of ``YOLOR_PARTS``.
        refined (dict[str, list[str]]): The refined prediction layers per
            head family, which ``row.pr_sites`` counts.
        losses (dict[str, list[float]]): The training losses of
            ``'baseline'`` and ``'YOLOR'``, one a step.
        checks (list[Check]): The checks of the YOLOR model that ran.
        fold_report (FoldReport, optional): What folding did with each
            implicit.
    """
    row: SweepRow
    yolor: str = 'all'
    refined: Dict[str, List[str]] = field(default_factory=dict)
    losses: Dict[str, List[float]] = field(default_factory=dict)
    checks: List[Check] = field(default_factory=list)
    fold_report: Optional[FoldReport] = None


def error_line(error: BaseException) -> str:
    """The type and first line of ``error``, for a row's reason."""
    lines = str(error).strip().splitlines() or ['']
    text = f'{type(error).__name__}: {lines[0]}'
    return text + (' [...]' if len(lines) > 1 else '')


def sweep_config(cfg: Config,
                 folder: str,
                 name: str,
                 settings: SweepSettings,
                 yolor: str = 'all') -> SweepRow:
    """Run one config's baseline and YOLOR variant in this process.

    Args:
        cfg (Config): A loaded mmdet config (not modified).
        folder (str): Its folder in mmdet's configs, for the row.
        name (str): Its file name, for the row.
        settings (SweepSettings): How to exercise it.
        yolor (str): The YOLOR variant, a key of ``YOLOR_PARTS``. Defaults
            to ``'all'``.

    Returns:
        SweepRow: The row; exceptions become its status.
    """
    return check_config(cfg, folder, name, settings, yolor).row


def check_config(
        cfg: Config,
        folder: str,
        name: str,
        settings: SweepSettings,
        yolor: str = 'all',
        progress: Optional[Callable[[str], None]] = None) -> ConfigCheck:
    """Check one config in this process as :func:`sweep_config` does, and
    return all that was found.

    Args:
        cfg (Config): A loaded mmdet config (not modified).
        folder (str): Its folder, for the row.
        name (str): Its file name, for the row.
        settings (SweepSettings): How to exercise it.
        yolor (str): The YOLOR variant, a key of ``YOLOR_PARTS``. Defaults
            to ``'all'``.
        progress (callable, optional): Called with a line as each phase
            (building, training, predicting, folding) starts. Defaults to
            None.

    Returns:
        ConfigCheck: The row (exceptions become its status) and the details
        behind it.

    Raises:
        ValueError: If ``yolor`` is not a key of ``YOLOR_PARTS``.
    """
    if yolor not in YOLOR_PARTS:
        raise ValueError(f'yolor must be one of {tuple(YOLOR_PARTS)}, got '
                         f'{yolor!r}')
    register_all_modules()
    quiet_logs()
    start = time.perf_counter()
    result = ConfigCheck(SweepRow(folder, name), yolor)
    try:
        with tempfile.TemporaryDirectory(prefix='config_check_') as work_dir:
            _check_variant(cfg, settings, result, progress
                           or (lambda line: None), work_dir)
    finally:
        result.row.seconds = time.perf_counter() - start
    return result


def _check_variant(cfg: Config, settings: SweepSettings, result: ConfigCheck,
                   progress: Callable[[str], None], work_dir: str) -> None:
    """Build, train and predict with the baseline of ``cfg`` and its YOLOR
    form, fold that and predict again, filling ``result`` as each phase
    ends (an exception leaves what was found so far); files made for the
    machine (a teacher checkpoint) go to ``work_dir``."""
    row = result.row
    cfg = copy.deepcopy(cfg)
    try:
        check_in_scope(cfg)
        shapes = image_shapes(cfg, settings)
        row.adaptations = adapt_to_machine(cfg, shapes, work_dir)
        progress('building the baseline')
        baseline = build_model(cfg, settings.seed)
    except Exception as error:
        baseline_failed(row, error)
        return
    # the YOLOR model is built before the baseline trains: it starts from
    # the baseline's weights, and its implicits say which outputs of the
    # baseline to watch
    yolor_cfg = model = failure = None
    phase = 'yolorize'
    try:
        progress('building the YOLOR model')
        yolor_cfg = yolorize(cfg, **YOLOR_PARTS[result.yolor])
        phase = 'build'
        model = build_model(yolor_cfg, settings.seed)
        _load_baseline_weights(model, baseline, row)
    except Exception as error:
        failure = (phase, error)
    outputs = OutputProbe(baseline, implicit_targets(model) if model else {})
    try:
        batch = generate_samples(input_spec(cfg, baseline), shapes, settings)
        progress(f'training the baseline ({settings.steps_phrase()})')
        result.losses['baseline'] = train(baseline, cfg, batch, settings)
        outputs.remove()
        progress('predicting with the baseline')
        predict(baseline, cfg, batch)
    except Exception as error:
        baseline_failed(row, error)
        return
    del baseline
    if failure is not None:
        _yolor_failed(row, *failure)
        return

    families = head_families(model)
    row.fa_sites = alignment_targets(model)
    result.refined = refined_by_family(model, families)
    row.pr_sites = {
        family: len(layers)
        for family, layers in result.refined.items()
    }
    row.uncovered = [
        family for family in families if family not in row.pr_sites
    ]
    row.notes.extend(f'{head} predicts nothing: {why}'
                     for head, why in heads_predicting_nothing(model).items())
    probe = ImplicitProbe(model)
    phase = 'train'
    try:
        progress(f'training the YOLOR model ({settings.steps_phrase()})')
        result.losses['YOLOR'] = train(model, yolor_cfg, batch, settings)
        result.checks.append(_losses_check(result.losses))
        probe.remove()
        phase = 'predict'
        progress('predicting with the YOLOR model')
        with replay_proposals(model) as proposals:
            before = predict(model, yolor_cfg, batch)
        raw_before = raw_outputs(model, batch)
        phase = 'fold'
        progress('folding the implicits and predicting again')
        result.fold_report = report = fold_and_strip(model)
        row.folded = (sum(site.folded
                          for site in report.sites), len(report.sites))
        with replay_proposals(model, replay=proposals) as folded_proposals:
            after = predict(model, yolor_cfg, batch)
        row.agreement = min(
            match_fraction(before, after),
            proposals_agree(proposals, folded_proposals))
        row.raw_outputs_agree = outputs_agree(raw_before,
                                              raw_outputs(model, batch))
    except Exception as error:
        if isinstance(error, FloatingPointError) and phase == 'train':
            result.checks.append(
                Check(LOSSES_FINITE, False, f'YOLOR model: {error}'))
        _yolor_failed(row, phase, error)
        return
    _judge(result, probe, outputs)


def baseline_failed(row, error: BaseException) -> None:
    """Set ``row``'s status and reason (a row with those two attributes)
    for an ``error`` that stopped the baseline: not runnable here, or a
    baseline error."""
    reason = str(error) if isinstance(error, NotRunnable) else \
        not_runnable_reason(error)
    row.status = NOT_RUNNABLE if reason else BASELINE_ERROR
    row.reason = reason or error_line(error)


def _yolor_failed(row: SweepRow, phase: str, error: BaseException) -> None:
    """A refusal (an ``InputError``: its first line, and the phase unless
    ``yolorize`` or building raised it) or a crash."""
    if isinstance(error, InputError):
        row.status = REFUSED
        row.reason = str(error).strip().splitlines()[0]
        if phase not in ('yolorize', 'build'):
            row.reason = f'in {phase}: {row.reason}'
    else:
        row.status, row.reason = CRASH, f'in {phase}: {error_line(error)}'


def _load_baseline_weights(model: nn.Module, baseline: nn.Module,
                           row: SweepRow) -> None:
    """Start ``model`` from the baseline's initial weights, so that the two
    differ only by YOLOR; note keys that do not match."""
    result = model.load_state_dict(baseline.state_dict(), strict=False)
    missing = [
        key for key in result.missing_keys if not is_implicit_parameter(key)
    ]
    for keys, where in ((result.unexpected_keys, 'not in the YOLOR model'),
                        (missing, 'only in the YOLOR model')):
        if keys:
            row.notes.append(f'{len(keys)} state-dict keys {where} '
                             f'({_few(sorted(keys))})')


def _losses_check(losses: Dict[str, List[float]]) -> Check:
    """Training raises on a loss that is not finite: reaching here, every
    loss was."""
    per_variant = [
        f'{variant} {", ".join(f"{loss:.4g}" for loss in values)}'
        for variant, values in losses.items()
    ]
    return Check(LOSSES_FINITE, True, '; '.join(per_variant))


def _judge(result: ConfigCheck, probe: ImplicitProbe,
           outputs: OutputProbe) -> None:
    """Check the YOLOR model of a row that ran, and set the row's
    status."""
    row = result.row
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
    if row.agreement < MIN_AGREEMENT and row.raw_outputs_agree:
        row.notes.append(
            f'folding kept the raw outputs, but only {row.agreement:.0%} '
            f'of the predictions: near-tied scores of this untrained model '
            f'reorder at a top-k')
    result.checks += [
        _calls_check(probe),
        _gradients_check(probe, excused),
        _predictions_check(row),
        _raw_outputs_check(row)
    ]
    problems = [
        check.detail for check in result.checks
        if check.required and check.passed is False
    ]
    missing = [f'no implicits in {family}' for family in row.uncovered]
    if not row.fa_sites:
        missing.insert(0, 'no feature alignment')
    if problems:
        row.status, row.reason = FAIL, '; '.join(problems + missing)
    elif missing:
        row.status, row.reason = PARTIAL, '; '.join(missing)
    else:
        row.status = OK


def _calls_check(probe: ImplicitProbe) -> Check:
    uncalled = probe.uncalled()
    total = len(probe.layers)
    if not total:
        return Check(IMPLICITS_CALLED, False,
                     'no implicit layers in the model')
    if uncalled:
        return Check(
            IMPLICITS_CALLED, False, f'{len(uncalled)} of {total} '
            f'implicits never called ({_few(uncalled)})')
    return Check(IMPLICITS_CALLED, True, f'all {total} called')


def _gradients_check(probe: ImplicitProbe, excused: Sequence[str]) -> Check:
    """Every trainable implicit parameter reached by a gradient, except
    those ``excused``: no gradient reached what they act on in the
    baseline either."""
    unreached = [key for key in probe.unreached() if key not in excused]
    total = len(probe.trainable)
    if unreached:
        return Check(
            GRADIENTS_REACH, False, f'no gradient reaches {len(unreached)} '
            f'of {total} implicit parameters ({_few(unreached)})')
    detail = f'{total - len(excused)} of {total} implicit parameters'
    if excused:
        detail += (f'; {len(excused)} excused, as no gradient reaches what '
                   f'they act on in the baseline either')
    return Check(GRADIENTS_REACH, True, detail)


def _predictions_check(row: SweepRow) -> Check:
    """At least :data:`MIN_AGREEMENT` of the predictions kept by folding;
    fewer pass if the raw outputs were kept (near-ties reordered)."""
    if row.agreement >= MIN_AGREEMENT:
        return Check(
            PREDICTIONS_KEPT, True, f'{row.agreement:.0%} agree '
            f'({MIN_AGREEMENT:.0%} needed)')
    if row.raw_outputs_agree:
        return Check(
            PREDICTIONS_KEPT, True, f'{row.agreement:.0%} agree, but the '
            f'raw outputs do: near-tied scores reorder at a top-k')
    return Check(
        PREDICTIONS_KEPT, False,
        f'fuse_implicit changed the predictions ({row.agreement:.0%} agree)')


def _raw_outputs_check(row: SweepRow) -> Check:
    """Informs only: a two-stage model's tensor outputs follow its own
    proposals, which the predictions check replays."""
    if row.raw_outputs_agree is None:
        detail = "the model has no mode='tensor' outputs to compare"
    elif row.raw_outputs_agree:
        detail = 'within 1e-3'
    else:
        detail = ('they differ by more than 1e-3; not required, the '
                  "predictions decide (a two-stage model's tensor outputs "
                  'follow its own proposals)')
    return Check(
        RAW_OUTPUTS_KEPT, row.raw_outputs_agree, detail, required=False)


def _few(names: Sequence[str], limit: int = 3) -> str:
    shown = ', '.join(names[:limit])
    return shown + (f', ... ({len(names) - limit} more)'
                    if len(names) > limit else '')


def quiet_logs() -> None:
    """Keep mmengine's messages (thousands of initialisation lines) out of
    the output: they go to the current logger, which this makes an
    ERROR-level one."""
    MMLogger.get_instance(
        'mmdet_yolor.analysis.config_check', log_level='ERROR')
