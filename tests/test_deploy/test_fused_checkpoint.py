# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Loading a trained checkpoint and writing its fused form, on a tiny YOLOR
FCOS: folded completely (foldable placement) and in part (paper
placement)."""
import os
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.stages import stage_outputs
from mmdet_yolor.deploy import fuse_checkpoint, load_trained
from mmdet_yolor.models.layers import BaseImplicit

from yolor_testing import (assert_close_stages, randomise_implicits,
                           tiny_fcos_config)

# yolorize arguments: everything folds, or the paper placement (kept
# P5 alignment, which the FPN reuses for its extra levels)
PLACEMENTS = {'complete': dict(foldable=True), 'partial': dict()}


def batch():
    torch.manual_seed(1)
    # the head's GN needs more than one value at the coarsest level
    return dict(inputs=torch.randn(1, 3, 160, 160), data_samples=[])


@pytest.fixture(scope='module', params=list(PLACEMENTS))
def trained(request, tmp_path_factory):
    """A saved YOLOR checkpoint, its config and its model (eval mode)."""
    work = tmp_path_factory.mktemp(request.param)
    cfg = yolorize(
        tiny_fcos_config(str(work / 'data'), str(work)),
        **PLACEMENTS[request.param])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    randomise_implicits(model)
    model.eval()
    checkpoint = str(work / 'epoch_3.pth')
    meta = dict(epoch=3, message_hub=dict(runtime_info={}))
    torch.save(dict(state_dict=model.state_dict(), meta=meta), checkpoint)
    return request.param, cfg, model, checkpoint


@pytest.fixture(scope='module')
def fused(trained):
    placement, cfg, model, checkpoint = trained
    out = osp.join(osp.dirname(checkpoint), 'fused', 'fused.pth')
    os.makedirs(osp.dirname(out))
    report, config = fuse_checkpoint(cfg, checkpoint, out)
    return report, config, out, torch.load(out, weights_only=False)


def test_load_trained_builds_the_model_in_eval_mode_with_its_weights(trained):
    _, cfg, model, checkpoint = trained
    loaded, source = load_trained(cfg.model, checkpoint)
    assert not loaded.training
    assert source['meta']['epoch'] == 3
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_the_fused_checkpoint_names_its_source_by_file_name_only(
        trained, fused):
    report, _, _, saved = fused
    meta = saved['meta']
    assert meta['mmdet_yolor'] == dict(
        fused_from='epoch_3.pth', complete=report.complete)
    # the rest of the source's meta stays, but not its runtime state
    assert meta['epoch'] == 3 and 'message_hub' not in meta


def test_what_folds_depends_on_the_placement(trained, fused):
    placement, *_ = trained
    report = fused[0]
    assert report.sites
    assert report.complete == (placement == 'complete')


def test_the_returned_config_builds_a_model_for_the_saved_keys(trained, fused):
    placement, cfg, model, checkpoint = trained
    report, config, out, saved = fused
    if placement == 'complete':
        # the plain mmdet config, written next to the checkpoint
        assert config == osp.splitext(out)[0] + '.py' and osp.isfile(config)
        text = open(config).read()
        assert 'YOLOR' not in text and 'mmdet_yolor' not in text
        assert not any('implicit' in key for key in saved['state_dict'])
    else:
        # the YOLOR config itself; every key kept, none written beside
        assert config == cfg.filename
        assert not osp.exists(osp.splitext(out)[0] + '.py')
        assert saved['state_dict'].keys() == model.state_dict().keys()
    rebuilt = MODELS.build(
        Config.fromfile(config).model if placement ==
        'complete' else cfg.model)
    assert rebuilt.state_dict().keys() == saved['state_dict'].keys()


def test_the_fused_checkpoint_computes_what_the_trained_one_did(
        trained, fused):
    placement, cfg, model, _ = trained
    _, config, out, _ = fused
    model_cfg = Config.fromfile(config).model if placement == 'complete' \
        else cfg.model
    fused_model, _ = load_trained(model_cfg, out)
    expected, _ = stage_outputs(model, batch())
    actual, _ = stage_outputs(fused_model, batch())
    assert_close_stages(expected, actual)


def test_folded_implicits_are_saved_at_identity_or_left_out(trained, fused):
    placement, _, model, _ = trained
    report, _, _, saved = fused
    state = saved['state_dict']
    for site in report.sites:
        key = f'{site.name}.implicit'  # the vector form
        implicit = model.get_submodule(site.name)
        assert isinstance(implicit, BaseImplicit)
        if placement == 'complete':
            assert key not in state  # stripped with its runtime operation
        elif site.folded:
            assert torch.equal(state[key],
                               torch.full_like(state[key], implicit.offset))
        else:
            assert torch.equal(state[key], implicit.implicit)
    # the partial fold does keep some at their trained value
    assert any(not site.folded for site in report.sites) == (
        placement == 'partial')
