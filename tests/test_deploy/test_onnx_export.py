# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""ONNX Runtime exports of the demo detectors (mmdeploy's; Sparse R-CNN's
with torch.onnx directly): baseline, YOLOR folded (paper placement) and
YOLOR folded (foldable placement), untrained with non-trivial weights and
implicits, fixed seeds."""
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from mmdet.registry import MODELS
from torch import nn

from mmdet_yolor import yolorize
from mmdet_yolor.deploy.onnx_export import (export_checkpoint, graph_op_counts,
                                            kept_implicit_ops)
from mmdet_yolor.deploy.verify import OpComparison, ParityChecker
from mmdet_yolor.models.layers import BaseImplicit
from mmdet_yolor.package_data import get_config
from mmdet_yolor.stack_api import onnx_torchscript_exporter
from yolor_dev.shapes_images import generated_images

from yolor_testing import (randomise_implicits, spread_head_weights,
                           spread_sparse_rcnn)

DETECTORS = {
    'fcos': 'demo/fcos_r18_fpn_6e_shapes.py',
    'atss': 'demo/atss_r18_fpn_6e_shapes.py',
    'faster_rcnn': 'demo/faster-rcnn_r18_fpn_6e_shapes.py',
    'mask_rcnn': 'demo/mask-rcnn_r18_fpn_6e_shapes.py',
    'sparse_rcnn': 'demo/sparse-rcnn_r18_fpn_6e_shapes.py',
}
# those whose paper placement keeps implicits (Sparse R-CNN's folds too)
PARTLY_FOLDED = [name for name in DETECTORS if name != 'sparse_rcnn']
# yolorize arguments of each variant; None: the baseline
VARIANTS = {'baseline': None, 'yolor': {}, 'foldable': dict(foldable=True)}
IMAGE_SIZE = 128
# Sparse R-CNN's learned proposals: fewer than the demo's 30, for speed (it
# keeps its 30 best of 20 x 6 class scores)
NUM_PROPOSALS = 20


def demo_config(name, variant):
    cfg = get_config(DETECTORS[name])
    # a smaller network input than the demo's 192 px, for speed
    cfg.test_dataloader.dataset.pipeline[1].scale = (IMAGE_SIZE, IMAGE_SIZE)
    if name == 'sparse_rcnn':
        cfg.model.rpn_head.num_proposals = NUM_PROPOSALS
    if VARIANTS[variant] is not None:
        cfg = yolorize(cfg, **VARIANTS[variant])
    return cfg


@pytest.fixture(scope='module')
def image():
    return generated_images([160], seed=1)[0]


@pytest.fixture(scope='module')
def exports(tmp_path_factory, image):
    """``exports(name, variant)``: the export of a checkpoint of the model,
    made once per module."""
    made = {}

    def export(name, variant):
        if (name, variant) not in made:
            cfg = demo_config(name, variant)
            torch.manual_seed(0)
            model = MODELS.build(cfg.model)
            model.init_weights()
            if name == 'sparse_rcnn':
                spread_sparse_rcnn(model)
            else:
                spread_head_weights(model)
            randomise_implicits(model)
            work_dir = tmp_path_factory.mktemp(f'{name}-{variant}')
            checkpoint = str(work_dir / 'model.pth')
            torch.save(dict(state_dict=model.state_dict()), checkpoint)
            made[name, variant] = export_checkpoint(cfg, checkpoint,
                                                    str(work_dir / 'export'),
                                                    image)
        return made[name, variant]

    return export


@pytest.mark.parametrize('variant', VARIANTS)
@pytest.mark.parametrize('name', DETECTORS)
def test_onnxruntime_detects_what_pytorch_detects(exports, image, name,
                                                  variant):
    export = exports(name, variant)
    check = ParityChecker(export).check_traced('test image')
    assert check.passed, check.format()
    assert check.parity.compared >= 20  # the comparison is not trivial
    assert (check.parity.min_mask_iou is not None) == (name == 'mask_rcnn')


@pytest.mark.parametrize('name', DETECTORS)
def test_foldable_folded_graph_has_the_baseline_ops(exports, name):
    export = exports(name, 'foldable')
    assert export.prepared.report.complete
    # the plain mmdet config: the export needs no plugin
    assert 'mmdet_yolor' not in export.prepared.model_cfg.pretty_text
    assert graph_op_counts(export.onnx_file) == graph_op_counts(
        exports(name, 'baseline').onnx_file)


@pytest.mark.parametrize('name', PARTLY_FOLDED)
def test_paper_placement_keeps_one_op_per_kept_site(exports, name):
    export = exports(name, 'yolor')
    report = export.prepared.report
    kept = [site for site in report.sites if not site.folded]
    assert kept and len(kept) < len(report.sites)
    kept_ops = kept_implicit_ops(export.prepared.model)
    assert sum(kept_ops.values()) == len(kept)
    comparison = OpComparison(
        graph_op_counts(export.onnx_file),
        graph_op_counts(exports(name, 'baseline').onnx_file), kept_ops)
    assert comparison.extra == kept_ops, comparison.format()
    assert comparison.explained


def test_export_as_trained_keeps_every_implicit(tmp_path, image):
    cfg = demo_config('fcos', 'yolor')
    export = export_checkpoint(cfg, None, str(tmp_path), image, fold=False)
    assert export.prepared.report is None
    implicits = [
        m for m in export.prepared.model.modules()
        if isinstance(m, BaseImplicit)
    ]
    assert sum(kept_implicit_ops(
        export.prepared.model).values()) == len(implicits) > 0


# mmdeploy's own inference API on the written files, in a process where
# mmdet_yolor cannot be imported: a fully folded export needs no plugin.
MMDEPLOY_INFERENCE = textwrap.dedent('''
    import sys
    sys.modules['mmdet_yolor'] = None  # not installed
    import numpy as np
    from mmdeploy.apis import inference_model
    model_config, deploy_config, onnx_file, image = sys.argv[1:]
    result = inference_model(model_config, deploy_config, [onnx_file],
                             np.load(image), 'cpu')[0].pred_instances
    print(len(result), float(result.scores.sum()))
''')


@pytest.mark.parametrize('name', ['fcos', 'sparse_rcnn'])
def test_mmdeploy_inference_model_runs_a_folded_export(exports, image,
                                                       tmp_path, name):
    export = exports(name, 'foldable')
    image_file = str(tmp_path / 'image.npy')
    np.save(image_file, image)
    result = subprocess.run([
        sys.executable, '-c', MMDEPLOY_INFERENCE, export.model_config_file,
        export.deploy_config_file, export.onnx_file, image_file
    ],
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    count, score_sum = result.stdout.split()[-2:]
    checker = ParityChecker(export)
    expected = checker.onnxruntime_detections(*checker.inputs(image))
    assert int(count) == len(expected) > 0
    assert float(score_sum) == pytest.approx(
        expected.scores.sum().item(), rel=1e-5)


def test_paper_placement_folds_sparse_rcnn_completely(exports):
    export = exports('sparse_rcnn', 'yolor')
    assert export.prepared.report.sites and export.prepared.report.complete
    assert kept_implicit_ops(export.prepared.model) == {}
    assert 'mmdet_yolor' not in export.prepared.model_cfg.pretty_text
    assert graph_op_counts(export.onnx_file) == graph_op_counts(
        exports('sparse_rcnn', 'baseline').onnx_file)


def test_sparse_rcnn_is_exported_with_torch_onnx(exports, image):
    export = exports('sparse_rcnn', 'baseline')
    assert 'delta2bbox' in export.mmdeploy_failure
    assert '\n' not in export.mmdeploy_failure
    # mmdeploy's export2SDK cannot describe it (test_cfg.rpn is None)
    assert not osp.exists(osp.join(export.work_dir, 'deploy.json'))
    ops = graph_op_counts(export.onnx_file)
    # one RoIAlign per pyramid level and stage, no NMS
    assert ops['RoiAlign'] == 4 * 6 and ops['TopK'] == 1
    assert 'NonMaxSuppression' not in ops
    # dynamic input shape: a non-square image, resized and padded
    checker = ParityChecker(export)
    inputs, data_samples = checker.inputs(image[:, :96])
    assert inputs.shape[2:] != data_samples[0].img_shape
    check = checker.check_images([('non-square', image[:, :96])])[0]
    assert check.passed, check.format()
    # dynamic batch: two images at once, as each alone
    batch = [export.traced.inputs, export.traced.inputs.flip(-1)]
    dets, labels = checker.backend_model.predict(torch.cat(batch))[:2]
    for i, inputs in enumerate(batch):
        alone = checker.backend_model.predict(inputs)
        torch.testing.assert_close(dets[i], alone[0][0], rtol=0, atol=1e-2)
        assert torch.equal(labels[i], alone[1][0])


def test_op_counts_ignore_aliases_of_equal_parameters(tmp_path):
    # two zero biases: the exporter keeps one initializer and an Identity
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1))
    for conv in model:
        nn.init.zeros_(conv.bias)
    path = str(tmp_path / 'model.onnx')
    torch.onnx.export(model.eval(), torch.zeros(1, 3, 4, 4), path,
                      **onnx_torchscript_exporter())
    assert 'Identity' in {n.op_type for n in onnx.load(path).graph.node}
    assert graph_op_counts(path) == {'Conv': 2}
