# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The model-zoo sweep on a fast subset: representative families of mmdet's
configs with shrunk backbones and small images, in this process."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.hub import get_config
from mmengine.structures import InstanceData

from mmdet_yolor.analysis import zoo_sweep
from mmdet_yolor.analysis.zoo_sweep import (ConfigSpec, SweepRow,
                                            SweepSettings, run_row,
                                            sweep_config)
from mmdet_yolor.errors import InputError
from mmdet_yolor.testing import shrink_zoo_config

SETTINGS = SweepSettings(image_size=192, steps=2, objects=4)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def sweep(folder: str, name: str) -> SweepRow:
    cfg = shrink_zoo_config(get_config(f'mmdet::{folder}/{name}'))
    return sweep_config(cfg, folder, name, SETTINGS)


def assert_covered(row: SweepRow) -> None:
    """Every check passed: implicits on the neck and in every head family,
    all called and reached by gradients, folding kept the predictions."""
    assert row.status == zoo_sweep.OK, row
    assert row.fa_sites and row.pr_sites and not row.uncovered
    assert row.agreement >= 0.95


@pytest.fixture(scope='module')
def retinanet_row():
    return sweep('retinanet', 'retinanet_r18_fpn_1x_coco.py')


@pytest.fixture(scope='module')
def mask_rcnn_row():
    return sweep('mask_rcnn', 'mask-rcnn_r50_fpn_1x_coco.py')


def test_dense_head_is_covered(retinanet_row):
    row = retinanet_row
    assert row.status == zoo_sweep.OK, row
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


def test_two_stage_with_masks_is_covered(mask_rcnn_row):
    row = mask_rcnn_row
    assert row.status == zoo_sweep.OK, row
    assert row.fa_sites == ['neck']
    assert set(row.pr_sites) == {
        'rpn_head', 'roi_head.bbox_head', 'roi_head.mask_head'
    }
    assert row.uncovered == []
    assert row.folded[1] > 0


def test_detr_family():
    row = sweep('detr', 'detr_r50_8xb2-150e_coco.py')
    assert_covered(row)
    # the last Linear of the box MLP, and the class Linear
    assert set(row.pr_sites) == {'bbox_head'}


def test_instance_head():
    row = sweep('solo', 'solo_r50_fpn_1x_coco.py')
    assert_covered(row)
    assert set(row.pr_sites) == {'mask_head'}


def test_cuda_only_op_is_not_runnable():
    row = sweep('carafe', 'faster-rcnn_r50_fpn-carafe_1x_coco.py')
    assert row.status == zoo_sweep.NOT_RUNNABLE
    assert row.reason == 'mmcv op carafe has no CPU kernel (CUDA only)'


def test_tracker_is_not_runnable_without_building():
    row = run_row(
        ConfigSpec(
            'sort', 'sort_faster-rcnn_r50_fpn_8xb2-4e_'
            'mot17halftrain_test-mot17halfval.py'), SETTINGS)
    assert row.status == zoo_sweep.NOT_RUNNABLE
    # the sort config builds mmdet's DeepSORT model without a ReID head
    assert row.reason == ('not an image detector: DeepSORT is a '
                          'tracking/video model')
    assert row.seconds < 10


def test_config_that_does_not_load_is_a_baseline_error():
    row = run_row(ConfigSpec('retinanet', 'nope.py'), SETTINGS)
    assert row.status == zoo_sweep.BASELINE_ERROR
    assert row.reason.startswith('config does not load')


def test_language_grounded_is_out_of_scope():
    cfg = get_config('mmdet::glip/glip_atss_swin-t_a_fpn_dyhead_16xb2_'
                     'ms-2x_funtune_coco.py')
    with pytest.raises(zoo_sweep.NotRunnable, match='language-grounded'):
        zoo_sweep.check_in_scope(cfg)


def test_adapt_to_machine():
    cfg = get_config('mmdet::simple_copy_paste/mask-rcnn_r50_fpn_rpn-2conv_'
                     '4conv1fc_syncbn-all_32xb2-ssj-270k_coco.py')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    assert zoo_sweep.adapt_to_machine(cfg, SETTINGS.image_shapes()) == [
        'AMP off', 'BatchFixedSizePad to the batch size', 'SyncBN -> BN'
    ]
    assert 'SyncBN' not in str(cfg.model)
    assert 'loss_scale' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.model.data_preprocessor.batch_augments[0].size == (192, 192)

    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    assert zoo_sweep.adapt_to_machine(cfg, SETTINGS.image_shapes()) == [
        'BN statistics learned (norm_eval=False)', 'pretrained weights dropped'
    ]
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.backbone.norm_eval is False


def test_weights_loaded_at_build_time_are_not_runnable():
    cfg = get_config('mmdet::ld/ld_r18-gflv1-r101_fpn_1x_coco.py')
    with pytest.raises(zoo_sweep.NotRunnable, match='teacher_ckpt='):
        zoo_sweep.adapt_to_machine(cfg, SETTINGS.image_shapes())


def test_not_runnable_reason():
    error = RuntimeError('deform_roi_pool_forward_impl: implementation for '
                         'device cpu not found.')
    assert zoo_sweep.not_runnable_reason(error) == (
        'mmcv op deform_roi_pool '
        'has no CPU kernel (CUDA only)')
    missing = ModuleNotFoundError(
        "No module named 'torchvision'", name='torchvision')
    assert 'torchvision' in zoo_sweep.not_runnable_reason(missing)
    assert zoo_sweep.not_runnable_reason(ValueError('shapes differ')) is None


def predictions(boxes, scores, labels):
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        scores=torch.tensor(scores),
        labels=torch.tensor(labels))
    return [sample]


def test_match_fraction_ignores_order_not_changes():
    before = predictions([[0, 0, 10, 10], [5, 5, 20, 20]], [0.9, 0.5], [1, 2])
    reordered = predictions([[5, 5, 20, 20], [0, 0, 10, 10.1]], [0.5, 0.9],
                            [2, 1])
    assert zoo_sweep.match_fraction(before, reordered) == 1.0
    moved = predictions([[5, 5, 20, 20], [0, 0, 12, 10]], [0.5, 0.9], [2, 1])
    assert zoo_sweep.match_fraction(before, moved) == 0.5
    fewer = predictions([[0, 0, 10, 10]], [0.9], [1])
    assert zoo_sweep.match_fraction(before, fewer) == 0.5


def test_learned_proposals_without_labels_or_scores_are_compared():
    # Sparse R-CNN's embedding RPN gives boxes (and query features) only
    boxes = torch.tensor([[0., 0, 10, 10], [5, 5, 20, 20]])
    same = [[InstanceData(bboxes=boxes.flip(0))]]
    moved = [[InstanceData(bboxes=boxes + torch.tensor([0., 0, 0, 3]))]]
    assert zoo_sweep.proposals_agree([[InstanceData(bboxes=boxes)]],
                                     same) == 1.0
    assert zoo_sweep.proposals_agree([[InstanceData(bboxes=boxes)]],
                                     moved) == 0.0


def test_default_configs():
    assert zoo_sweep.default_config('cascade_rpn').startswith(
        'cascade-rpn_faster-rcnn')
    specs = zoo_sweep.list_configs(['retinanet', 'yolox'])
    assert [spec.folder for spec in specs] == ['retinanet', 'yolox']
    assert specs[0].path.endswith(
        'configs/retinanet/retinanet_r18_fpn_1x_coco.py')
    assert len(zoo_sweep.list_configs(['yolox'], all_configs=True)) > 1
    with pytest.raises(InputError, match='not an algorithm folder.*_base_'):
        zoo_sweep.list_configs(['_base_'])


def test_report(retinanet_row):
    rows = [
        retinanet_row,
        SweepRow('detr', 'detr.py', zoo_sweep.REFUSED,
                 'yolorize: no | support'),
        SweepRow('yolact', 'yolact.py', zoo_sweep.PARTIAL,
                 'no implicits in mask_head'),
        SweepRow('carafe', 'carafe.py', zoo_sweep.NOT_RUNNABLE,
                 'no CPU kernel'),
    ]
    totals = zoo_sweep.summarize(rows)
    assert (totals.rows, totals.runnable, totals.covered) == (4, 3, 2)
    assert (totals.runnable_folders, totals.covered_folders) == (3, 2)
    table = zoo_sweep.format_table(rows)
    assert table.splitlines()[0].split() == [
        'folder', 'config', 'FA', 'site', 'PR', 'sites', 'status', 'fold',
        'time'
    ]
    assert 'covered folders: 2/3 runnable (67%)' in table
    markdown = zoo_sweep.format_markdown(rows, SETTINGS, 'python tools/x.py',
                                         61.0)
    assert '`python tools/x.py`' in markdown
    assert 'run time 1m' in markdown
    assert '| detr | detr.py | - | - | refused: yolorize: no \\| support |' \
        in markdown
    assert '- no CPU kernel: carafe/carafe.py' in markdown
    assert '- `_base_`:' in markdown


def run_cli(*args):
    return subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools', 'analysis', 'zoo_sweep.py')] + list(args),
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
    assert '`python tools/analysis/zoo_sweep.py --folders carafe bytetrack ' \
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


def test_cli_refuses_unknown_folders(tmp_path):
    result = run_cli('--folders', 'nope')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        'error: not an algorithm folder of ')


def test_raw_outputs_agree_within_round_off_only():
    outputs = [torch.tensor([0.5, -2.0]), torch.ones(2, 3)]
    close = [outputs[0] + 1e-5, outputs[1] * (1 + 1e-5)]
    # an implicit left out or folded twice: a change of its size (std 0.02)
    moved = [outputs[0] * 1.02, outputs[1]]
    assert zoo_sweep.outputs_agree(outputs, close)
    assert not zoo_sweep.outputs_agree(outputs, moved)
    assert not zoo_sweep.outputs_agree(outputs, outputs[:1])
    assert zoo_sweep.outputs_agree(outputs, None) is None
