# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What both ONNX exporters share: their error and the preprocessing of
the traced image (the config's test pipeline and the model's
``data_preprocessor``, as mmdeploy's ``create_input`` applies them)."""
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from mmdet_yolor.deploy.onnx_export import deploy_config, deploy_model_config
from mmdet_yolor.deploy.tracing import DeployError, preprocess
from mmdet_yolor.errors import InputError
from mmdet_yolor.package_data import get_config

# a BGR colour far from the preprocessing mean on every channel
BGR = (10, 100, 200)


def test_an_export_error_is_an_input_error():
    # the tools print an InputError as one line, without a traceback
    assert issubclass(DeployError, InputError)


@pytest.fixture(scope='module')
def preprocessed():
    # mmdeploy applies the top-level test_pipeline: the dataloader's here
    cfg = deploy_model_config(get_config('demo/fcos_r18_fpn_6e_shapes.py'))
    model = MODELS.build(cfg.model)
    before = cfg.pretty_text  # (building adds the heads' test_cfg)
    image = np.empty((100, 140, 3), np.uint8)
    image[:] = BGR
    inputs, data_samples = preprocess(model, cfg, deploy_config(cfg), image)
    return cfg, before, inputs, data_samples


def test_the_image_is_resized_by_the_test_pipeline_and_padded(preprocessed):
    _, _, inputs, data_samples = preprocessed
    [sample] = data_samples
    assert sample.ori_shape == (100, 140)
    # the demo's Resize to 192 keeping the ratio, padded to a multiple of 32
    assert sample.img_shape == (137, 192)
    assert tuple(inputs.shape) == (1, 3, 160, 192)


def test_the_image_is_normalised_in_rgb_and_padded_with_zeros(preprocessed):
    cfg, _, inputs, _ = preprocessed
    preprocessor = cfg.model.data_preprocessor
    rgb = BGR[::-1]
    for channel in range(3):
        expected = (rgb[channel] - preprocessor.mean[channel]) / \
            preprocessor.std[channel]
        torch.testing.assert_close(
            inputs[0, channel, :137],
            torch.full((137, 192), expected),
            rtol=1e-4,
            atol=1e-4)
    assert inputs[0, :, 137:].abs().max() == 0


def test_preprocessing_leaves_the_model_config_unchanged(preprocessed):
    # mmdeploy's create_input swaps the loading transform in place
    cfg, before, _, _ = preprocessed
    assert cfg.pretty_text == before
    assert cfg.test_pipeline[0].type == 'LoadImageFromFile'
