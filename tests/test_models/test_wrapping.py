# Copyright (c) mmdet_yolor contributors. All rights reserved.
import copy
import io
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from torch import nn

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.stages import stage_outputs
from mmdet_yolor.models.foldable import FoldableMixin
from mmdet_yolor.models.wrapping import (YOLORMixin, mix_into, unmix,
                                         wrapped_type)
from mmdet_yolor.package_data import get_config

from yolor_testing import shrink_backbone


@pytest.fixture(scope='module')
def model_and_data():
    cfg = yolorize(get_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'))
    torch.manual_seed(0)
    model = MODELS.build(shrink_backbone(cfg.model)).eval()
    packed = demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 96, 128)], num_items=[2])
    return model, model.data_preprocessor(packed, False)


def assert_same_outputs(model, copied, data):
    expected, proposals = stage_outputs(model, data)
    actual = stage_outputs(copied, data, proposals)[0]
    for stage in expected:
        for e, a in zip(expected[stage], actual[stage]):
            assert torch.equal(e, a), stage


def generated_types(model):
    return sorted({
        type(m).__name__
        for m in model.modules() if isinstance(m, YOLORMixin)
    })


def test_models_pickle(model_and_data):
    model, data = model_and_data
    copied = pickle.loads(pickle.dumps(model))
    assert generated_types(copied) == generated_types(model) == [
        'YOLORConv2d', 'YOLORFPN', 'YOLORLinear', 'YOLORRPNHead',
        'YOLORShared2FCBBoxHead'
    ]
    assert_same_outputs(model, copied, data)


def test_models_deepcopy(model_and_data):
    model, data = model_and_data
    copied = copy.deepcopy(model)
    assert_same_outputs(model, copied, data)
    with torch.no_grad():  # the copy has its own implicits
        copied.neck.implicit_alignment[0].implicit.add_(1.)
    assert not torch.equal(copied.neck.implicit_alignment[0].implicit,
                           model.neck.implicit_alignment[0].implicit)


def test_models_torch_save(model_and_data):
    model, data = model_and_data
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    assert_same_outputs(model, torch.load(buffer, weights_only=False), data)


def test_models_unpickle_in_a_fresh_process(model_and_data, tmp_path):
    model, _ = model_and_data
    path = tmp_path / 'model.pkl'
    path.write_bytes(pickle.dumps(model))
    # nothing of mmdet_yolor imported beforehand: unpickling imports it
    script = textwrap.dedent(f'''
        import pickle, sys
        model = pickle.loads(open({str(path)!r}, 'rb').read())
        assert 'mmdet_yolor' in sys.modules
        print(type(model.neck).__name__, type(model.rpn_head.rpn_cls)
              .__name__)
    ''')
    result = subprocess.run([sys.executable, '-c', script],
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['YOLORFPN', 'YOLORConv2d']


class Doubling(FoldableMixin):
    """A mixin for the tests: doubles a module's output."""

    def forward(self, x):
        return 2 * super().forward(x)


def test_mix_into_and_unmix_keep_the_module():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    expected = layer(x)
    keys = set(layer.state_dict())
    assert mix_into(layer, Doubling) is layer
    assert isinstance(layer, nn.Linear) and type(layer).__name__ == \
        'YOLORLinear' and wrapped_type(layer) is nn.Linear
    torch.testing.assert_close(layer(x), 2 * expected)
    assert set(layer.state_dict()) == keys
    # one YOLOR mixin a module: its methods call the wrapped type's
    for mixin in (Doubling, type('Other', (Doubling, ), {})):
        with pytest.raises(
                TypeError,
                match=f'has a YOLOR mixin already; {mixin.__name__} cannot'):
            mix_into(layer, mixin)
    assert type(unmix(layer)) is nn.Linear
    torch.testing.assert_close(layer(x), expected)


def test_generated_classes_are_shared():
    fpn = dict(type='FPN', in_channels=[4, 8], out_channels=4, num_outs=2)
    first = MODELS.build(dict(type='YOLORNeck', neck=fpn))
    second = MODELS.build(dict(type='YOLORNeck', neck=fpn))
    assert type(first) is type(second) and isinstance(first, FPN)
