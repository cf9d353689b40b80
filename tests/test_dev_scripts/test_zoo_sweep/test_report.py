# Copyright (c) mmdet_yolor contributors. All rights reserved.
from mmdet_yolor.analysis.config_check.row import (NOT_RUNNABLE, OK, PARTIAL,
                                                   REFUSED, TIMEOUT, SweepRow)
from mmdet_yolor.analysis.config_check.settings import SweepSettings
from yolor_dev.zoo_sweep import report
from yolor_dev.zoo_sweep.compile_row import (BASELINE_DOES_NOT_COMPILE,
                                             COMPILES_LIKE_BASELINE, WORSE,
                                             CompileRow)
from yolor_dev.zoo_sweep.configs import mmdet_config_dir


def test_report(retinanet_row, settings):
    rows = [
        retinanet_row,
        SweepRow('detr', 'detr.py', REFUSED, 'yolorize: no | support'),
        SweepRow('yolact', 'yolact.py', PARTIAL, 'no implicits in mask_head'),
        SweepRow('carafe', 'carafe.py', NOT_RUNNABLE, 'no CPU kernel'),
    ]
    totals = report.summarize(rows)
    assert (totals.rows, totals.runnable, totals.covered) == (4, 3, 2)
    assert (totals.runnable_folders, totals.covered_folders) == (3, 2)
    table = report.format_table(rows)
    assert table.splitlines()[0].split() == [
        'folder', 'config', 'FA', 'site', 'PR', 'sites', 'status', 'fold',
        'time'
    ]
    assert 'covered folders: 2/3 runnable (67%)' in table
    markdown = report.format_markdown(rows, settings, 'python tools/x.py',
                                      61.0)
    assert '`python tools/x.py`' in markdown
    assert 'run time 1m' in markdown
    assert '| detr | detr.py | - | - | refused: yolorize: no \\| support |' \
        in markdown
    assert '- no CPU kernel: carafe/carafe.py' in markdown
    assert '- `_base_`: ' in markdown


def test_format_duration():
    assert [
        report.format_duration(seconds)
        for seconds in (0.4, 59, 61, 3569, 3600, 7860)
    ] == ['0s', '59s', '1m', '59m', '1h00m', '2h11m']


def test_a_folder_is_covered_when_all_its_runnable_rows_are():
    rows = [
        SweepRow('a', '1.py', OK),
        SweepRow('a', '2.py', NOT_RUNNABLE, 'x'),
        SweepRow('b', '1.py', OK),
        SweepRow('b', '2.py', TIMEOUT, 'killed after 600 s'),
        SweepRow('c', '1.py', NOT_RUNNABLE, 'x'),
    ]
    totals = report.summarize(rows)
    assert totals.statuses == {OK: 2, TIMEOUT: 1, NOT_RUNNABLE: 2}
    assert (totals.folders, totals.runnable_folders,
            totals.covered_folders) == (3, 2, 1)
    assert report.format_totals(totals) == [
        'covered folders: 1/2 runnable (50%); 1 folders not runnable here',
        'configs: 5 (ok 2, timeout 1, n/a 2); covered 2/3 runnable'
    ]


def test_table_cells():
    row = SweepRow(
        'fcos',
        'f.py',
        OK,
        fa_sites=[f'neck.fpn_convs.{i}' for i in range(3)] + ['backbone'],
        pr_sites={
            'bbox_head': 3,
            'rpn_head': 2
        },
        folded=(7, 29),
        agreement=0.96,
        seconds=48.6)
    failed = SweepRow('x', 'y.py', 'crash',
                      f'in build: {mmdet_config_dir()}/x/y.py: ' + 'z' * 80)
    lines = report.format_table([row, failed], width=40).splitlines()
    # numbered siblings grouped
    assert 'neck.fpn_convs.{0,1,2}, backbone ' in lines[2]
    assert 'bbox_head (3), rpn_head (2)' in lines[2]
    assert '7/29 (96% kept)' in lines[2] and lines[2].endswith('49s')
    # mmdet's configs are named by their scope, long cells are cut
    assert 'crash: in build: mmdet::x/y.py: zzzzz...  -' in lines[3]


def test_markdown_lists_what_did_not_run_and_the_notes():
    rows = [
        SweepRow('a', '1.py', OK, notes=['zero | gradients'], seconds=3),
        SweepRow('b', '1.py', NOT_RUNNABLE, 'no CPU kernel'),
        SweepRow('c', '1.py', NOT_RUNNABLE, 'no CPU kernel'),
    ]
    markdown = report.format_markdown(rows, SweepSettings(), 'cmd', 3)
    assert '- no CPU kernel: b/1.py, c/1.py' in markdown
    assert '- a/1.py: zero \\| gradients' in markdown
    assert '2 images (336x448, 448x336 px)' in markdown
    assert 'Adapted to run here: nothing' in markdown
    markdown = report.format_markdown(rows[:1], SweepSettings(), 'cmd', 3)
    assert 'Every baseline ran.' in markdown
    assert markdown.endswith(
        '- `misc`: Detectron2 checkpoint-conversion configs\n')


def test_rows_made_on_another_torch_are_named(monkeypatch):
    monkeypatch.setattr(report.torch, '__version__', '2.13.0')
    rows = [
        SweepRow('a', '1.py', OK, torch='2.13.0'),
        SweepRow('convnext', '1.py', OK, torch='2.14.1'),
        SweepRow('old', '1.py', OK),  # not recorded: no claim
    ]
    compiled = {
        ('crowddet', '1.py'): CompileRow('crowddet', '1.py', torch='2.14.1')
    }
    assert report.other_stacks(rows) == \
        ' On torch 2.14.1 (`make sweep-stack`): convnext.'
    assert report.other_stacks(rows, compiled) == \
        ' On torch 2.14.1 (`make sweep-stack`): convnext, crowddet.'
    assert report.other_stacks(rows[:1]) == ''
    markdown = report.format_markdown(rows, SweepSettings(), 'cmd', 3)
    assert 'On torch 2.14.1 (`make sweep-stack`): convnext.' in markdown


def test_compile_column():
    rows = [
        SweepRow('atss', 'atss.py', OK),
        SweepRow('tood', 'tood.py', OK),
        SweepRow('detr', 'detr.py', OK),
        SweepRow('yolo', 'yolo.py', OK),
        SweepRow('carafe', 'carafe.py', NOT_RUNNABLE, 'no CPU kernel'),
    ]
    same = dict(baseline=[4, 1, 0], YOLOR=[4, 1, 0], folded=[4, 1, 0])
    compiled = {
        ('atss', 'atss.py'):
        CompileRow('atss', 'atss.py', COMPILES_LIKE_BASELINE, counts=same),
        ('tood', 'tood.py'):
        CompileRow(
            'tood',
            'tood.py',
            WORSE,
            'YOLOR: graph breaks 2 > 1',
            counts=dict(baseline=[4, 1, 0], YOLOR=[5, 2, 0], folded=[4, 1,
                                                                     0])),
        ('detr', 'detr.py'):
        CompileRow('detr', 'detr.py', BASELINE_DOES_NOT_COMPILE,
                   'Unsupported: boom'),
    }
    assert report.compile_cell(compiled['atss', 'atss.py']) == 'ok: 4/1/0'
    assert report.compile_cell(compiled['tood', 'tood.py']) == (
        'worse: 4/1/0, 5/2/0, 4/1/0 (YOLOR: graph breaks 2 > 1)')
    assert report.compile_cell(compiled['detr', 'detr.py']) == (
        'baseline does not compile: Unsupported: boom')
    assert report.compile_cell(None) == 'not measured'
    # yolo is not measured; carafe cannot run here
    assert report.compile_totals(rows, compiled) == [
        'compile: 3/4 runnable folders measured; 1 compile like their '
        'baselines, 1 have a baseline that does not compile (baseline does '
        'not compile 1, ok 1, worse 1)'
    ]
    table = report.format_table(rows, compiled=compiled)
    assert table.splitlines()[0].split()[-2:] == ['compile', 'time']
    markdown = report.format_markdown(rows, SweepSettings(), 'python x.py',
                                      60.0, compiled, 120.0)
    assert 'run time 1m, compile column 2m.' in markdown
    assert '| atss | atss.py | - | - | ok | - | ok: 4/1/0 | 0s |' in markdown
    assert '| carafe | carafe.py | - | - | n/a: no CPU kernel | - | - | 0s |' \
        in markdown
    assert '| :-- | :-- | :-- | :-- | :-- | --: | :-- | --: |' in markdown
