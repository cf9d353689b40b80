# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLOR models compile like their baselines.

Under ``torch.compile`` (dynamo with the ``eager`` backend, which finds the
same frames and graph breaks as inductor without its compile time), each
YOLOR form of a detector takes no more frames, graph breaks and recompiles
than the baseline, and its raw ``mode='tensor'`` outputs match eager ones.
The single-stage FPN detectors are checked in all four forms (paper and
foldable placement, unfolded and folded); the slower-to-trace ones in the
form with the most YOLOR operations (paper, unfolded) and one folded form
(foldable where the neck is an FPN, paper otherwise: the foldable placement
needs an FPN).

The YOLOR models start from the baseline's weights with identity implicits:
their values then flow exactly as the baseline's, so data-dependent control
flow (how many proposals survive an RPN's NMS) takes the same branches, and
what differs is YOLOR's code alone. Inductor's numerics are checked by
training with ``compile=True`` (tests/test_tools/test_train.py).
"""
import functools

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.hub import get_config

from mmdet_yolor import fuse_implicit, yolorize
from mmdet_yolor.package_data import config_path
from yolor_dev.compiling import count_compilation

from yolor_testing import shrink_zoo_config

DEMO = 'demo/{}_r18_fpn_6e_shapes.py'
ALL_FORMS = ('paper', 'paper folded', 'foldable', 'foldable folded')
# detector: its config (a demo config of the plugin, or mmdet's zoo) and
# the YOLOR forms checked
DETECTORS = {
    'fcos': (DEMO.format('fcos'), ALL_FORMS),
    'atss': (DEMO.format('atss'), ALL_FORMS),
    'retinanet': ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', ALL_FORMS),
    'faster-rcnn': (DEMO.format('faster-rcnn'), ('paper', 'foldable folded')),
    'mask-rcnn': (DEMO.format('mask-rcnn'), ('paper', 'foldable folded')),
    'sparse-rcnn': (DEMO.format('sparse-rcnn'), ('paper', 'foldable folded')),
    'rtmdet': ('mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
               ('paper', 'paper folded')),
    # heads that loop their levels themselves (no forward_single)
    'tood': ('mmdet::tood/tood_r50_fpn_1x_coco.py', ('paper', 'paper folded')),
    'solo': ('mmdet::solo/solo_r50_fpn_1x_coco.py', ('paper', 'paper folded')),
    'solov2':
    ('mmdet::solov2/solov2_r50_fpn_1x_coco.py', ('paper', 'paper folded')),
    'retinanet-sepbn': ('mmdet::nas_fpn/retinanet_r50_fpn_crop640-50e_coco.py',
                        ('paper', 'paper folded')),
    # a graph break inside a neck list (DyHead's deformable conv)
    'dyhead': ('mmdet::dyhead/atss_r50-caffe_fpn_dyhead_1x_coco.py',
               ('paper', 'paper folded')),
    # a graph break inside forward_single (mmcv's deformable AdaptiveConv)
    'cascade-rpn':
    ('mmdet::cascade_rpn/cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py',
     ('paper', 'paper folded')),
    # a neck that breaks the graph (mmcv's deformable convs): the feature
    # alignment's forward runs eagerly around it
    'centernet': ('mmdet::centernet/centernet_r18-dcnv2_8xb16-crop512-140e_'
                  'coco.py', ('paper', 'paper folded')),
    'deformable-detr':
    ('mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
     ('paper', 'paper folded')),
}
IMAGE_SIZE = 128


def load_config(name: str) -> Config:
    path = DETECTORS[name][0]
    if path.startswith('mmdet::'):
        cfg = shrink_zoo_config(get_config(path))
        cfg.model.backbone.init_cfg = None
        return cfg
    return Config.fromfile(config_path(path))


def tensor_forward(model, data):
    """The detector's raw outputs as a function of its input images."""
    samples = data['data_samples']
    return lambda inputs: model(inputs, samples, mode='tensor')


@functools.lru_cache(maxsize=1)
def baseline(name: str):
    """(config, model, preprocessed batch, the baseline's counts) of a
    detector, or why it does not compile in place of the counts; the tests
    of one detector run in a row and share it."""
    cfg = load_config(name)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    packed = demo_mm_inputs(
        batch_size=1,
        image_shapes=[(3, IMAGE_SIZE, IMAGE_SIZE)],
        num_items=[3],
        num_classes=2,
        with_mask=True)
    data = model.data_preprocessor(packed, False)
    try:
        counts = count_compilation(tensor_forward(model, data), data['inputs'])
    except Exception as error:  # the stack's dynamo cannot compile mmdet's
        first_line = str(error).strip().splitlines()[0]
        return cfg, model, data, f'{type(error).__name__}: {first_line}'
    return cfg, model, data, counts


# slow: dynamo traces 30 detector forms; YOLOR compiles as its baselines
@pytest.mark.slow
@pytest.mark.parametrize('name,form',
                         [(name, form)
                          for name, (_, forms) in DETECTORS.items()
                          for form in forms])
def test_yolor_compiles_like_its_baseline(name, form):
    cfg, plain, data, expected = baseline(name)
    if isinstance(expected, str):
        # the promise is YOLOR compiles wherever its baseline does
        pytest.skip(f'mmdet\'s {name} does not compile on torch '
                    f'{torch.__version__} ({expected})')
    yolor_cfg = yolorize(
        cfg,
        implicit_cfg=dict(init='identity'),
        foldable=form.startswith('foldable'))
    model = MODELS.build(yolor_cfg.model)
    model.load_state_dict(plain.state_dict(), strict=False)
    model.eval()
    if form.endswith('folded'):
        model = fuse_implicit(model, logger='silent')
    counts = count_compilation(tensor_forward(model, data), data['inputs'])
    assert counts.frames <= expected.frames, (name, counts, expected)
    assert counts.graph_breaks <= expected.graph_breaks, (name, counts,
                                                          expected)
    assert counts.recompiles <= expected.recompiles, (name, counts, expected)
    assert counts.max_error <= 1e-4, (name, counts)
