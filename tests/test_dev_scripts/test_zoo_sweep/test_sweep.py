# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Running the sweep: rows in this process or each in its own, saved to a
JSON-lines file and resumed from it; and its command line."""
import json
import os
import os.path as osp
import subprocess
import sys
from dataclasses import asdict

import torch

from mmdet_yolor.analysis.config_check.row import (BASELINE_ERROR,
                                                   NOT_RUNNABLE, OK, SweepRow)
from yolor_dev.zoo_sweep import sweep as zoo_sweep
from yolor_dev.zoo_sweep.compile_row import CompileRow
from yolor_dev.zoo_sweep.configs import ConfigSpec

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def test_tracker_is_not_runnable_without_building(settings):
    row = zoo_sweep.run_row(
        ConfigSpec(
            'sort', 'sort_faster-rcnn_r50_fpn_8xb2-4e_'
            'mot17halftrain_test-mot17halfval.py'), settings)
    assert row.status == NOT_RUNNABLE
    # the sort config builds mmdet's DeepSORT model without a ReID head
    assert row.reason == ('not an image detector: DeepSORT is a '
                          'tracking/video model')
    assert row.seconds < 10


def test_config_that_does_not_load_is_a_baseline_error(settings):
    row = zoo_sweep.run_row(ConfigSpec('retinanet', 'nope.py'), settings)
    assert row.status == BASELINE_ERROR
    assert row.reason.startswith('config does not load')


def test_load_rows_keeps_the_last_row_of_each_config(tmp_path):
    path = tmp_path / 'rows.jsonl'
    assert zoo_sweep.load_rows(str(path)) == {}
    first = SweepRow('atss', 'a.py', 'crash', 'in train: boom')
    again = SweepRow('atss', 'a.py', OK, folded=(3, 35), agreement=1.0)
    other = SweepRow('fcos', 'f.py', NOT_RUNNABLE, 'no CPU kernel')
    path.write_text('\n'.join(
        json.dumps(asdict(row)) for row in (first, other, again)) + '\n\n')
    rows = zoo_sweep.load_rows(str(path))
    assert list(rows) == [('atss', 'a.py'), ('fcos', 'f.py')]
    assert rows['atss', 'a.py'] == again
    assert rows['atss', 'a.py'].folded == (3, 35)
    assert rows['fcos', 'f.py'] == other


def test_run_sweep_saves_each_row_and_resumes(tmp_path, settings):
    rows_file = str(tmp_path / 'rows.jsonl')
    specs = [ConfigSpec('atss', 'nope.py'), ConfigSpec('fcos', 'nope.py')]
    lines = []

    def run_sweep(**kwargs):
        lines.clear()
        return zoo_sweep.run_sweep(
            specs,
            settings,
            isolated=False,
            progress=lines.append,
            rows_file=rows_file,
            **kwargs)

    rows = run_sweep()
    assert [row.status for row in rows] == [BASELINE_ERROR] * 2
    # each row says which torch it ran on
    assert [row.torch for row in rows] == [torch.__version__] * 2
    assert lines[0].startswith('[1/2] atss nope.py ... baseline error ')
    assert lines[1].startswith('[2/2] fcos ') and lines[1].endswith('ETA 0s')
    assert list(zoo_sweep.load_rows(rows_file).values()) == rows

    # a saved row is taken as it is: its config does not run again
    saved = SweepRow('atss', 'nope.py', OK, seconds=5.0)
    with open(rows_file, 'w') as f:
        f.write(json.dumps(asdict(saved)) + '\n')
    rows = run_sweep(resume=True)
    assert rows[0] == saved and rows[1].status == BASELINE_ERROR
    assert lines[0] == f'1 configs taken from {rows_file}'
    assert lines[1].startswith('[1/1] fcos nope.py')
    assert len(open(rows_file).readlines()) == 2


def run_cli(*args):
    return subprocess.run(
        [sys.executable,
         osp.join(REPO, '.dev_scripts', 'zoo_sweep.py')] + list(args),
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))


def test_cli_runs_each_config_in_its_own_process(tmp_path):
    out, rows = tmp_path / 'zoo.md', tmp_path / 'rows.jsonl'
    args = [
        '--folders', 'carafe', 'bytetrack', '--image-size', '128', '--out',
        str(out), '--rows',
        str(rows)
    ]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('[1/2] carafe faster-rcnn_r50_fpn-carafe')
    assert ' n/a ' in lines[0] and 'ETA' in lines[0]
    assert lines[1].startswith('[2/2] bytetrack ') and 'ETA 0s' in lines[1]
    assert 'covered folders: 0/0 runnable' in result.stdout
    text = out.read_text()
    assert '`python .dev_scripts/zoo_sweep.py --folders carafe bytetrack ' \
        in text
    assert 'mmcv op carafe has no CPU kernel (CUDA only): ' \
        'carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py' in text
    assert len(rows.read_text().splitlines()) == 2

    # resuming takes the saved rows instead of running them again
    rows.write_text(rows.read_text().splitlines()[0] + '\n')
    result = run_cli(*args, '--resume')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f'1 configs taken from {rows}'
    assert lines[1].startswith('[1/1] bytetrack ')
    assert out.read_text().split('## Configs')[1] == \
        text.split('## Configs')[1]

    # the compile column alone takes the checks from --rows
    result = run_cli(*args, '--compile-only')
    assert result.returncode == 0, result.stderr
    assert '| carafe | faster-rcnn_r50_fpn-carafe_1x_coco.py | - | - | n/a' \
        in out.read_text()
    rows.write_text('')
    result = run_cli(*args, '--compile-only')
    assert result.returncode == 1
    assert result.stderr.strip().startswith(
        f'--compile-only takes the checks from {rows}, which has no row of '
        'carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py, bytetrack/')


def test_cli_refuses_unknown_folders(tmp_path):
    result = run_cli('--folders', 'nope')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        'error: not an algorithm folder of ')


def test_compile_rows_are_saved_and_loaded_as_compile_rows(tmp_path, settings):
    rows_file = str(tmp_path / 'compile.jsonl')
    rows = zoo_sweep.run_sweep([ConfigSpec('atss', 'nope.py')],
                               settings,
                               isolated=False,
                               progress=None,
                               rows_file=rows_file,
                               kind=zoo_sweep.COMPILE)
    assert isinstance(rows[0], CompileRow)
    assert rows[0].status == BASELINE_ERROR
    assert list(zoo_sweep.load_rows(rows_file, zoo_sweep.COMPILE).values()) \
        == rows
