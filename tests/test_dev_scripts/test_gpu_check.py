# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The GPU check's CPU path (``--device cpu --quick``), so that the code a
GPU lease runs never rots: FCOS through every section, Faster R-CNN (RPN,
RoI heads, proposals replayed) through those without torch.compile (whose
tracing of a two-stage detector takes a minute here)."""
import importlib
import json
import sys
import types

import mmdet.models.losses.focal_loss as focal_loss
import pytest
import torch
from mmcv import ops
from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss

from yolor_dev.gpu_check import (SECTIONS, GPUCheckSettings,
                                 _torch_sigmoid_focal_loss, cuda_standins,
                                 run_gpu_check)


@pytest.fixture(scope='module')
def reports(tmp_path_factory):
    """(markdown, json) of two quick CPU runs."""
    out = tmp_path_factory.mktemp('gpu_check')
    runs = {}
    for detector, sections in (('fcos', list(SECTIONS)), ('faster_rcnn', [
            'environment', 'train', 'inference', 'fold_parity'
    ])):
        settings = GPUCheckSettings(
            device='cpu',
            quick=True,
            out=str(out / detector),
            budget_s=300,
            detectors=[detector],
            sections=sections)
        run_gpu_check(settings)
        runs[detector] = ((out / detector / 'gpu_check.md').read_text(),
                          json.loads(
                              (out / detector / 'gpu_check.json').read_text()))
    return runs


def test_every_section_reports(reports):
    _, written = reports['fcos']
    sections = written['sections']
    assert list(sections) == list(SECTIONS)
    assert sections['environment']['device'] == 'cpu'
    assert sections['cuda_ops']['status'] == 'n/a: needs --device cuda'
    assert sections['distributed']['status'] == \
        'skipped: needs 2 GPUs, found 0'
    for name in ('train', 'inference', 'fold_parity', 'compile'):
        assert sections[name]['status'] == 'ok', sections[name]


@pytest.mark.parametrize('detector', ['fcos', 'faster_rcnn'])
def test_measurements_are_plausible(reports, detector):
    _, written = reports[detector]
    sections = written['sections']
    train = sections['train']['rows'][detector]
    assert train['fp16'] == {'status': 'n/a on the CPU'}
    fp32 = train['fp32']
    assert fp32['baseline_ms'] > 0 and fp32['yolor_ms'] > 0
    # times are rounded to 0.01 ms, ratios computed before
    assert fp32['ratio'] == pytest.approx(
        fp32['yolor_ms'] / fp32['baseline_ms'], abs=2e-3)
    if detector == 'fcos':
        assert train['bf16']['yolor_ms'] > 0
    else:  # mmcv's CPU NMS takes float32 only (test_bfloat16.py)
        assert 'BFloat16' in train['bf16']['status']
    inference = sections['inference']['rows'][detector]
    assert min(inference[key]
               for key in ('baseline_ms', 'yolor_ms', 'folded_ms')) > 0
    parity = sections['fold_parity']['rows'][detector]
    assert parity['passed']
    assert set(parity['max_relative']) >= {'neck'}
    assert all(v <= 1e-4 for v in parity['max_relative'].values())


def test_markdown_is_one_table_with_a_row_per_detector(reports):
    for detector, (markdown, written) in reports.items():
        table = [
            line for line in markdown.splitlines() if line.startswith('|')
        ]
        assert len(table) == 3  # header, alignment, one detector
        assert table[0].startswith('| detector | train fp32 | train fp16 |')
        assert table[2].startswith(f'| {detector} | ')
        assert table[2].count('|') == table[0].count('|')
        assert table[2].endswith(' |') and ' ok ' in table[2]
        # sections that did not run say so
        assert ('- compile: not run' in markdown) == (detector != 'fcos')


def test_compile_section_times_three_variants(reports):
    row = reports['fcos'][1]['sections']['compile']['rows']['fcos']
    assert row['backend'] == 'eager'
    assert set(row['compile_s']) == {'baseline', 'YOLOR', 'YOLOR folded'}
    assert row['folded_ms'] > 0


def test_focal_loss_standin_equals_mmdets_pure_torch_one():
    torch.manual_seed(0)
    pred = torch.randn(50, 6)
    labels = torch.randint(0, 7, (50, ))  # 6 is the background
    target = torch.nn.functional.one_hot(labels, 7)[:, :6].float()
    expected = py_sigmoid_focal_loss(pred, target, reduction='none')
    actual = _torch_sigmoid_focal_loss(pred, labels, 2.0, 0.25, None, 'none')
    torch.testing.assert_close(actual, expected)


def test_standins_are_restored():
    mmcv_nms = importlib.import_module('mmcv.ops.nms')
    nms, loss = mmcv_nms.nms, focal_loss._sigmoid_focal_loss
    with cuda_standins(True) as used:
        assert len(used) == 3
        assert mmcv_nms.nms is not nms
        assert focal_loss._sigmoid_focal_loss is _torch_sigmoid_focal_loss
    assert mmcv_nms.nms is nms and focal_loss._sigmoid_focal_loss is loss
    with cuda_standins(False) as used:
        assert used == [] and mmcv_nms.nms is nms


def test_a_run_out_of_time_still_writes_its_table(tmp_path):
    settings = GPUCheckSettings(
        device='cpu', quick=True, out=str(tmp_path), budget_s=0)
    sections = run_gpu_check(settings)
    assert [s['status'] for s in sections.values()] == \
        ['skipped: out of time'] * len(SECTIONS)
    markdown = (tmp_path / 'gpu_check.md').read_text()
    rows = [line for line in markdown.splitlines() if line.startswith('| ')]
    assert len(rows) == 2 + len(settings.detectors)  # header, alignment
    assert all(row.endswith('| - |') for row in rows[2:])
    assert '- train: skipped: out of time' in markdown


def test_detectors_past_the_reserve_are_reported_as_skipped(tmp_path):
    # a full-size run whose budget leaves no section its reserve builds
    # nothing and says so per detector
    settings = GPUCheckSettings(
        device='cpu',
        out=str(tmp_path),
        budget_s=60,
        detectors=['fcos'],
        sections=['train', 'inference', 'fold_parity', 'compile'])
    sections = run_gpu_check(settings)
    for name in settings.sections:
        assert sections[name]['rows'] == {
            'fcos': {
                'status': 'skipped: out of time'
            }
        }, name
    row = [
        line for line in (tmp_path / 'gpu_check.md').read_text().splitlines()
        if line.startswith('| fcos')
    ][0]
    assert row.count('skipped: out of time') == 5  # train, network x1,
    # compiled x2, fold parity


def test_nms_standin_serves_mmcvs_batched_nms(monkeypatch):
    # torchvision's nms, played by mmcv's CPU one: what is checked is that
    # batched_nms goes through the stand-in and gets what mmcv returns
    calls = []

    def torchvision_nms(boxes, scores, iou_threshold):
        calls.append(len(boxes))
        return ops.nms(boxes, scores, iou_threshold)[1]

    monkeypatch.setitem(
        sys.modules, 'torchvision',
        types.SimpleNamespace(ops=types.SimpleNamespace(nms=torchvision_nms)))
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=generator) * 100
    boxes = torch.cat(
        (xy, xy + 5 + 30 * torch.rand(300, 2, generator=generator)), dim=1)
    scores = torch.rand(300, generator=generator)
    labels = torch.randint(0, 3, (300, ), generator=generator)
    nms_cfg = dict(type='nms', iou_threshold=0.5)
    expected = ops.batched_nms(boxes, scores, labels, nms_cfg)
    with cuda_standins(True):
        actual = ops.batched_nms(boxes, scores, labels, nms_cfg)
    assert calls
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)
