# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Which detectors of the installed mmdet's zoo YOLOR reaches
(``.dev_scripts/zoo_sweep.py``).

For each config (by default one per algorithm folder of
``mmdet/.mim/configs``, :mod:`.configs`), :mod:`.sweep` runs the plugin's
per-config check (:mod:`mmdet_yolor.analysis.config_check`), each config in
its own process, and :mod:`.report` turns the rows into
``docs/model_zoo.md``; :mod:`.compile_row` measures each config's
compile column.
"""
from .compile_row import CompileRow, compile_config
from .configs import ConfigSpec, default_config, list_configs
from .report import format_markdown, format_table, summarize
from .sweep import (CHECK, COMPILE, RowKind, load_rows, run_row,
                    run_row_isolated, run_sweep)

__all__ = [
    'ConfigSpec', 'list_configs', 'default_config', 'run_row',
    'run_row_isolated', 'run_sweep', 'load_rows', 'summarize', 'format_table',
    'format_markdown', 'CompileRow', 'compile_config', 'RowKind', 'CHECK',
    'COMPILE'
]
