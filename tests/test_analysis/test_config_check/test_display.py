# Copyright (c) mmdet_yolor contributors. All rights reserved.
from mmengine.config import Config

from mmdet_yolor.analysis.config_check import display
from mmdet_yolor.analysis.config_check.row import (CRASH, OK, PARTIAL, Check,
                                                   ConfigCheck, SweepRow)
from mmdet_yolor.analysis.config_check.settings import SweepSettings
from mmdet_yolor.deploy import FoldReport
from mmdet_yolor.models import FoldSite


def test_format_check_of_a_covered_config():
    result = ConfigCheck(
        SweepRow(
            '/home/me',
            'my.py',
            OK,
            fa_sites=[f'neck.fpn_convs.{i}' for i in range(3)],
            pr_sites={'roi_head.bbox_head': 2},
            notes=['zero gradients in these steps for 1 of 9 implicit'],
            adaptations=['pretrained weights dropped'],
            seconds=31.6),
        refined={
            'roi_head.bbox_head':
            ['roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg']
        },
        checks=[
            Check('losses finite', True, 'baseline 2.5; YOLOR 2.4'),
            Check('every implicit called', True, 'all 9 called'),
            Check('folding keeps the raw outputs', False, 'they differ',
                  False),
        ],
        fold_report=FoldReport([
            FoldSite('neck.fpn_convs.0.implicit', True, 'into the conv'),
            FoldSite('roi_head.bbox_head.fc_cls.implicit_a', False, 'kept')
        ]))
    assert display.format_check(result).splitlines() == [
        'adapted to run here: pretrained weights dropped',
        'feature alignment: neck.fpn_convs.{0,1,2}',
        'prediction refinement:',
        '  roi_head.bbox_head: fc_cls, fc_reg',
        'folded 1 of 2 implicit layers',
        '  folded neck.fpn_convs.0.implicit: into the conv',
        '  kept   roi_head.bbox_head.fc_cls.implicit_a: kept',
        'checks:',
        '  pass  losses finite: baseline 2.5; YOLOR 2.4',
        '  pass  every implicit called: all 9 called',
        '  warn  folding keeps the raw outputs: they differ',
        'notes:',
        '  - zero gradients in these steps for 1 of 9 implicit',
        'ok (covered, 32s): every check passed, with implicits on the '
        'features and in every head family',
    ]


def test_format_check_says_why_a_family_has_no_implicits():
    row = SweepRow(
        'd',
        'c.py',
        PARTIAL,
        'no implicits in bbox_head',
        fa_sites=['neck'],
        uncovered=['bbox_head'])
    lines = display.format_check(ConfigCheck(row, yolor='fa')).splitlines()
    assert lines == [
        'feature alignment: neck', 'prediction refinement:',
        '  bbox_head: no implicits, prediction refinement is off '
        '(--yolor fa)',
        'partial (covered, 0s): every check passed; no implicits in '
        'bbox_head'
    ]
    row.fa_sites = []
    lines = display.format_check(ConfigCheck(row, yolor='pr')).splitlines()
    assert lines[0] == 'feature alignment: off (--yolor pr)'
    assert lines[2] == ('  bbox_head: no implicits, YOLORHead found no '
                        'prediction layer in it')


def test_format_check_of_a_config_that_did_not_run():
    crashed = ConfigCheck(
        SweepRow('d', 'c.py', CRASH,
                 'in train: FloatingPointError: loss is nan at step 1'),
        checks=[
            Check('losses finite', False, 'YOLOR model: loss is nan at '
                  'step 1')
        ])
    assert display.format_check(crashed).splitlines() == [
        'checks:',
        '  FAIL  losses finite: YOLOR model: loss is nan at step 1',
        'crash (not covered, 0s): in train: FloatingPointError: loss is nan '
        'at step 1',
    ]


def test_format_plan():
    plan = display.format_plan(
        Config(dict(model=dict())), 'my.py', SweepSettings(steps=1), 'pr')
    assert plan == (
        'checking my.py with --yolor pr: the baseline and its YOLOR form '
        'train 1 step on 2 generated images (336x448, 448x336 px) and '
        'predict, then the YOLOR model is folded')


def test_timed_progress_prints_at_once(capsys):
    progress = display.timed_progress()
    progress('training')
    assert capsys.readouterr().out == '[    0s] training\n'
