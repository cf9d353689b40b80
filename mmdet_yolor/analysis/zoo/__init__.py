# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Which detectors of the installed mmdet's zoo YOLOR reaches.

For each config (by default one per algorithm folder of
``mmdet/.mim/configs``, :mod:`.configs`), adapted to run here
(:mod:`.machine`), the baseline trains a few steps on generated inputs
(:mod:`.inputs`, :mod:`.steps`) and predicts; if it runs here, its YOLOR
form (``yolorize(cfg, **YOLOR_PARTS['all'])``) trains the same steps on the
same inputs under probes (:mod:`.probes`), predicts, and is folded with
:func:`mmdet_yolor.fuse_implicit`, whose predictions must match the
unfolded ones (:mod:`.agreement`). :mod:`.row` checks one config and makes
its row, :mod:`.sweep` runs many, each in its own process, and
:mod:`.report` turns the rows into ``docs/model_zoo.md``. :mod:`.check`
shows the check of one config to a user
(``tools/analysis/check_config.py``).

What the checks rely on is the plugin's public API: what the implicits of a
model act on comes from :mod:`mmdet_yolor.models.introspection`.
"""
from .check import format_check, format_plan, timed_progress
from .configs import ConfigSpec, default_config, list_configs
from .machine import NotRunnable
from .report import format_markdown, format_table, summarize
from .row import (BASELINE_ERROR, COVERED, CRASH, FAIL, KILLED, NOT_RUNNABLE,
                  OK, PARTIAL, REFUSED, STATUSES, TIMEOUT, Check, ConfigCheck,
                  SweepRow, check_config, sweep_config)
from .settings import SweepSettings
from .sweep import load_rows, run_row, run_row_isolated, run_sweep

__all__ = [
    'SweepSettings', 'ConfigSpec', 'list_configs', 'default_config',
    'NotRunnable', 'SweepRow', 'Check', 'ConfigCheck', 'sweep_config',
    'check_config', 'run_row', 'run_row_isolated', 'run_sweep', 'load_rows',
    'summarize', 'format_table', 'format_markdown', 'format_check',
    'format_plan', 'timed_progress', 'OK', 'PARTIAL', 'REFUSED', 'CRASH',
    'FAIL', 'NOT_RUNNABLE', 'BASELINE_ERROR', 'TIMEOUT', 'KILLED', 'COVERED',
    'STATUSES'
]
