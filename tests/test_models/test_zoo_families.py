# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLOR on the head families of mmdet's zoo beyond the seed's five, one
shrunk detector each (ResNet-18, two transformer layers, small images):

- it trains with implicits on its neck's (or backbone's) outputs and in
  every head family, each implicit called and reached by gradients, and
  folding keeps its predictions: the zoo sweep's checks
  (:func:`~mmdet_yolor.analysis.config_check.sweep_config`);
- warm-started from its baseline's weights with identity implicits it
  predicts exactly what the baseline predicts (adding 0 and multiplying
  by 1 are exact in float arithmetic, so this holds on any machine).
"""
import copy

import pytest
import torch
from mmdet.utils import register_all_modules
from mmengine.hub import get_config

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.config_check import OK, SweepSettings, sweep_config
from mmdet_yolor.analysis.config_check.inputs import (eval_batch,
                                                      generate_samples,
                                                      image_shapes, input_spec)
from mmdet_yolor.analysis.config_check.machine import adapt_to_machine
from mmdet_yolor.analysis.config_check.steps import build_model

from yolor_testing import shrink_zoo_config

SETTINGS = SweepSettings(image_size=192, steps=2, objects=4)

# family: (config of mmdet's zoo, head families with refined layers)
FAMILIES = {
    'per-level ModuleLists (RTMDet)': ('rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
                                       {'bbox_head'}),
    'ATSS subclass (VFNet)': ('vfnet/vfnet_r50_fpn_1x_coco.py', {'bbox_head'}),
    'every cascade stage (Cascade R-CNN)':
    ('cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py', {
        'rpn_head', 'roi_head.bbox_head.0', 'roi_head.bbox_head.1',
        'roi_head.bbox_head.2'
    }),
    'semantic head (Panoptic FPN)':
    ('panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py',
     {'rpn_head', 'roi_head.bbox_head', 'roi_head.mask_head',
      'semantic_head'}),
    'DETR decoder branches (Deformable DETR)':
    ('deformable_detr/deformable-detr_r50_16xb2-50e_coco.py', {'bbox_head'}),
    'dynamic mask controllers (CondInst)':
    ('condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py', {'bbox_head'}),
    'neckless panoptic queries (Mask2Former)':
    ('mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
     {'panoptic_head'}),
}


def zoo_config(name):
    return shrink_zoo_config(get_config(f'mmdet::{name}'))


@pytest.mark.parametrize('family', list(FAMILIES))
def test_family_trains_and_folds_with_yolor(family):
    name, refined = FAMILIES[family]
    row = sweep_config(zoo_config(name), *name.split('/'), SETTINGS)
    assert row.status == OK, row
    assert row.fa_sites in (['neck'], ['backbone'])
    assert set(row.pr_sites) == refined
    assert row.uncovered == []
    assert row.agreement >= 0.95


@pytest.mark.parametrize('family', [
    'per-level ModuleLists (RTMDet)',
    'DETR decoder branches (Deformable DETR)',
    'dynamic mask controllers (CondInst)',
    'neckless panoptic queries (Mask2Former)',
])
def test_warm_start_with_identity_implicits_is_exact(family):
    name, _ = FAMILIES[family]
    register_all_modules()
    cfg = zoo_config(name)
    # an untrained model scores below the usual thresholds: keep everything
    if 'score_thr' in cfg.model.get('test_cfg', {}):
        cfg.model.test_cfg.score_thr = 0.0
    shapes = image_shapes(cfg, SETTINGS)
    adapt_to_machine(cfg, shapes)
    baseline = build_model(cfg, seed=0)
    model = build_model(
        yolorize(cfg, implicit_cfg=dict(init='identity')), seed=1)
    missing, unexpected = model.load_state_dict(
        baseline.state_dict(), strict=False)
    assert not unexpected
    assert missing and all('.implicit_' in key for key in missing)

    batch = eval_batch(
        generate_samples(input_spec(cfg, baseline), shapes, SETTINGS))
    with torch.no_grad():
        expected = baseline.eval().test_step(copy.deepcopy(batch))
        actual = model.eval().test_step(copy.deepcopy(batch))
    compared = 0
    for before, after in zip(expected, actual):
        for key in ('pred_instances', 'pred_panoptic_seg'):
            if key not in before:
                continue
            fields = before.get(key).to_dict()
            compared += sum(value.numel() for value in fields.values()
                            if torch.is_tensor(value))
            for field, value in fields.items():
                if torch.is_tensor(value):
                    assert torch.equal(value, after.get(key).get(field)), \
                        f'{key}.{field} differs'
    assert compared > 0, 'nothing predicted to compare'
