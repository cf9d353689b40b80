# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The introspection API says what YOLOR put into a model, from the modules
that own the implicits (not from their names)."""
import pytest
from mmdet.registry import MODELS

from mmdet_yolor import fuse_implicit, yolorize
from mmdet_yolor.models import (alignment_targets, implicit_layers,
                                implicit_sites, refined_layers)
from mmdet_yolor.models.foldable import ALIGNMENT, INPUT, OUTPUT
from mmdet_yolor.models.introspection import refined_levels

from yolor_testing import tiny_fcos_config

HEAD_LAYERS = ['conv_cls', 'conv_reg', 'conv_centerness']


def build(tmp_path, **yolor):
    cfg = yolorize(tiny_fcos_config(str(tmp_path), str(tmp_path)), **yolor)
    return MODELS.build(cfg.model)


def test_paper_placement_sites(tmp_path):
    model = build(tmp_path)
    sites = implicit_sites(model)
    alignment = [site for site in sites if site.role == ALIGNMENT]
    assert [(s.name, s.target, s.index) for s in alignment
            ] == [(f'neck.implicit_alignment.{level}', 'neck', level)
                  for level in range(5)]
    for layer in HEAD_LAYERS:
        for role, attribute in ((INPUT, 'implicit_a'), (OUTPUT, 'implicit_m')):
            assert [(s.name, s.index) for s in sites
                    if s.target == f'bbox_head.{layer}' and s.role == role] \
                == [(f'bbox_head.{layer}.{attribute}.{level}', level)
                    for level in range(5)]
    assert len(sites) == 5 + 3 * 2 * 5
    # the implicit of a site is the module of that name
    modules = dict(model.named_modules())
    assert all(modules[site.name] is site.implicit for site in sites)
    assert list(implicit_layers(model)) == [site.name for site in sites]
    assert alignment_targets(model) == ['neck']
    assert list(refined_layers(model)) == [
        f'bbox_head.{layer}' for layer in HEAD_LAYERS
    ]
    assert {refined_levels(layer)
            for layer in refined_layers(model).values()} == {5}


def test_foldable_placement_sites_and_folding(tmp_path):
    model = build(tmp_path, foldable=True)
    # FCOS's FPN: 3 lateral-level convs and 2 extra convs
    assert alignment_targets(model) == [
        f'neck.fpn_convs.{level}' for level in range(5)
    ]
    sites = implicit_sites(model)
    assert {(s.role, s.index)
            for s in sites if s.role == ALIGNMENT} == {(ALIGNMENT, None)}
    # shared across levels, and no input implicit before padded 3x3 convs
    assert {s.role for s in sites if s.role != ALIGNMENT} == {OUTPUT}
    assert {refined_levels(layer)
            for layer in refined_layers(model).values()} == {1}
    fuse_implicit(model.eval(), logger='silent')
    assert implicit_sites(model) == [] and refined_layers(model) == {}


@pytest.mark.parametrize(
    'parts',
    [dict(feature_alignment=False),
     dict(prediction_refinement=False)])
def test_one_part_only(tmp_path, parts):
    model = build(tmp_path, **parts)
    roles = {site.role for site in implicit_sites(model)}
    if parts.get('feature_alignment') is False:
        assert roles == {INPUT, OUTPUT} and alignment_targets(model) == []
    else:
        assert roles == {ALIGNMENT} and refined_layers(model) == {}
