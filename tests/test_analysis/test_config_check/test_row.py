# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Checking one config: representative families of mmdet's configs with
shrunk backbones and small images, in this process; and how the checks make
a row's status."""
import pytest

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.config_check import row as zoo_row
from mmdet_yolor.analysis.config_check.row import (ConfigCheck, SweepRow,
                                                   check_config)
from mmdet_yolor.analysis.config_check.settings import SweepSettings

from yolor_testing import tiny_fcos_config

# For the tiny FCOS of yolor_testing: a second a row.
TINY = SweepSettings(image_size=64, steps=1, objects=3)


def assert_covered(row: SweepRow) -> None:
    """Every check passed: implicits on the neck and in every head family,
    all called and reached by gradients, folding kept the predictions."""
    assert row.status == zoo_row.OK, row
    assert row.fa_sites and row.pr_sites and not row.uncovered
    assert row.agreement >= 0.95


@pytest.fixture(scope='module')
def mask_rcnn_row(sweep):
    return sweep('mask_rcnn', 'mask-rcnn_r50_fpn_1x_coco.py')


def test_dense_head_is_covered(retinanet_row):
    row = retinanet_row
    assert row.status == zoo_row.OK, row
    assert row.fa_sites == ['neck']
    assert row.pr_sites == {'bbox_head': 2}
    assert row.uncovered == []
    folded, total = row.folded
    assert total == 25  # 5 neck levels, 2 layers x 5 levels x (add, mul)
    assert 0 <= folded <= total
    # ResNet's BN statistics are frozen with its weights: from scratch they
    # must be learned
    assert row.adaptations == [
        'BN statistics learned (norm_eval=False)', 'pretrained weights dropped'
    ]


def test_the_checks_behind_a_row(retinanet_check):
    result = retinanet_check
    assert [check.name for check in result.checks] == [
        'losses finite', 'every implicit called',
        'gradients reach the implicits', 'folding keeps the predictions',
        'folding keeps the raw outputs'
    ]
    assert all(check.passed for check in result.checks), result.checks
    assert result.refined == {
        'bbox_head': ['bbox_head.retina_cls', 'bbox_head.retina_reg']
    }
    assert len(result.fold_report.sites) == result.row.folded[1]
    assert [len(result.losses[variant])
            for variant in ('baseline', 'YOLOR')] == [2, 2]


def test_two_stage_with_masks_is_covered(mask_rcnn_row):
    row = mask_rcnn_row
    assert row.status == zoo_row.OK, row
    assert row.fa_sites == ['neck']
    assert set(row.pr_sites) == {
        'rpn_head', 'roi_head.bbox_head', 'roi_head.mask_head'
    }
    assert row.uncovered == []
    assert row.folded[1] > 0


def test_detr_family(sweep):
    row = sweep('detr', 'detr_r50_8xb2-150e_coco.py')
    assert_covered(row)
    # the last Linear of the box MLP, and the class Linear
    assert set(row.pr_sites) == {'bbox_head'}


def test_instance_head(sweep):
    row = sweep('solo', 'solo_r50_fpn_1x_coco.py')
    assert_covered(row)
    assert set(row.pr_sites) == {'mask_head'}


def test_cuda_only_op_is_not_runnable(sweep):
    row = sweep('carafe', 'faster-rcnn_r50_fpn-carafe_1x_coco.py')
    assert row.status == zoo_row.NOT_RUNNABLE
    assert row.reason == 'mmcv op carafe has no CPU kernel (CUDA only)'


def test_the_yolor_variant_is_a_part_of_yolor_parts():
    cfg = tiny_fcos_config('data', 'work')
    result = check_config(cfg, 'tiny', 'fcos.py', TINY, yolor='pr')
    row = result.row
    assert (row.status, row.reason) == (zoo_row.PARTIAL,
                                        'no feature alignment')
    assert row.fa_sites == [] and row.pr_sites == {'bbox_head': 3}
    with pytest.raises(ValueError, match="one of .*'all'.*got 'nope'"):
        check_config(cfg, 'tiny', 'fcos.py', TINY, yolor='nope')


def test_a_config_in_yolor_form_is_refused():
    cfg = yolorize(tiny_fcos_config('data', 'work'))
    result = check_config(cfg, 'tiny', 'fcos-yolor.py', TINY)
    assert result.row.status == zoo_row.REFUSED
    assert 'in YOLOR form already' in result.row.reason
    assert result.checks == [] and 'baseline' in result.losses


def test_error_line():
    assert zoo_row.error_line(ValueError('bad\nvery bad')) == \
        'ValueError: bad [...]'
    assert zoo_row.error_line(KeyError()) == 'KeyError: '


class Probe:
    """What an :class:`ImplicitProbe` recorded, made up: implicits ``a``
    and ``b`` with a parameter each."""

    def __init__(self,
                 layers=('a', 'b'),
                 uncalled=(),
                 unreached=(),
                 excused=(),
                 zero=()):
        self.layers = dict.fromkeys(layers)
        self.trainable = {f'{name}.implicit': name for name in layers}
        self._uncalled, self._unreached = list(uncalled), list(unreached)
        self._excused, self._zero = set(excused), list(zero)

    def uncalled(self):
        return self._uncalled

    def unreached(self):
        return self._unreached

    def excused(self, key, baseline):
        return key in self._excused

    def zero_gradients(self):
        return self._zero


def judge(probe, **row):
    fields = dict(
        fa_sites=['neck'],
        pr_sites={'bbox_head': 2},
        agreement=1.0,
        raw_outputs_agree=True)
    result = ConfigCheck(SweepRow('folder', 'config.py', **{**fields, **row}))
    zoo_row._judge(result, probe, outputs=None)
    return result


def test_every_check_passed_is_ok():
    result = judge(Probe(zero=['b.implicit']))
    assert (result.row.status, result.row.reason) == (zoo_row.OK, '')
    assert all(check.passed for check in result.checks)
    assert result.row.notes == [
        'zero gradients in these steps for 1 of 2 implicit parameters '
        '(b.implicit)'
    ]


def test_failed_checks_make_the_reason_in_order():
    result = judge(
        Probe(uncalled=['b'], unreached=['a.implicit']),
        agreement=0.5,
        raw_outputs_agree=False,
        uncovered=['roi_head.mask_head'])
    assert result.row.status == zoo_row.FAIL
    assert result.row.reason == (
        '1 of 2 implicits never called (b); no gradient reaches 1 of 2 '
        'implicit parameters (a.implicit); fuse_implicit changed the '
        'predictions (50% agree); no implicits in roi_head.mask_head')
    # the raw outputs inform only
    assert [(check.passed, check.required)
            for check in result.checks] == [(False, True), (False, True),
                                            (False, True), (False, False)]


def test_excused_gradients_and_near_ties_pass_with_a_note():
    result = judge(
        Probe(unreached=['a.implicit'], excused=['a.implicit']), agreement=0.9)
    assert result.row.status == zoo_row.OK
    gradients, predictions = result.checks[1:3]
    assert gradients.detail == (
        '1 of 2 implicit parameters; 1 excused, as no gradient reaches '
        'what they act on in the baseline either')
    assert predictions.passed and '90% agree' in predictions.detail
    assert result.row.notes[0].startswith('no gradient reaches 1 implicit '
                                          'parameters, as none reaches')
    assert 'near-tied scores' in result.row.notes[1]


def test_missing_implicits_are_partial_and_none_at_all_fails():
    result = judge(Probe(), fa_sites=[], uncovered=['mask_head'])
    assert (result.row.status, result.row.reason) == (
        zoo_row.PARTIAL, 'no feature alignment; no implicits in mask_head')
    result = judge(Probe(layers=()), fa_sites=[], pr_sites={})
    assert (result.row.status, result.row.reason) == (
        zoo_row.FAIL, 'no implicit layers in the model; no feature alignment')
    result = judge(Probe(), raw_outputs_agree=None)
    assert result.checks[-1].passed is None
