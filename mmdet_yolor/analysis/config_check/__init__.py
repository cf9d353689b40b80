# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Check that YOLOR works on one config (``tools/analysis/check_config.py``).

The config, adapted to run here (:mod:`.machine`), trains a few steps on
generated inputs (:mod:`.inputs`, :mod:`.steps`) and predicts; if the
baseline runs here, its YOLOR form (``yolorize(cfg, **YOLOR_PARTS[...])``)
trains the same steps on the same inputs under probes (:mod:`.probes`),
predicts, and is folded with :func:`mmdet_yolor.fuse_implicit`, whose
predictions must match the unfolded ones (:mod:`.agreement`). :mod:`.row`
checks one config and makes its row; :mod:`.display` shows the check to a
user. The zoo-wide sweep that runs this check on every algorithm folder of
mmdet and writes ``docs/model_zoo.md`` is development tooling
(``.dev_scripts/zoo_sweep.py``).

What the checks rely on is the plugin's public API: what the implicits of a
model act on comes from :mod:`mmdet_yolor.models.introspection`.
"""
from .display import format_check, format_plan, format_sites, timed_progress
from .machine import NotRunnable
from .row import (BASELINE_ERROR, COVERED, CRASH, FAIL, KILLED, NOT_RUNNABLE,
                  OK, PARTIAL, REFUSED, STATUSES, TIMEOUT, Check, ConfigCheck,
                  SweepRow, check_config, sweep_config)
from .settings import SweepSettings

__all__ = [
    'SweepSettings', 'NotRunnable', 'SweepRow', 'Check', 'ConfigCheck',
    'sweep_config', 'check_config', 'format_check', 'format_plan',
    'format_sites', 'timed_progress', 'OK', 'PARTIAL', 'REFUSED', 'CRASH',
    'FAIL', 'NOT_RUNNABLE', 'BASELINE_ERROR', 'TIMEOUT', 'KILLED', 'COVERED',
    'STATUSES'
]
