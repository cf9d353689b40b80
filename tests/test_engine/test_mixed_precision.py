# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch
from mmengine import device as mmengine_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from mmdet_yolor import runs
from mmdet_yolor.engine import mixed_precision
from mmdet_yolor.engine.mixed_precision import (amp_devices_available,
                                                check_amp_available)
from mmdet_yolor.errors import InputError


@pytest.fixture
def devices(monkeypatch):
    """``devices(*names)``: make mmengine see only these accelerators."""

    def make(*names):
        for device in mixed_precision.AMP_DEVICES:
            monkeypatch.setattr(
                mmengine_device,
                f'is_{device}_available',
                lambda available=device in names: available)

    return make


def test_no_accelerator_stops_amp_in_one_line(devices):
    devices()
    assert amp_devices_available() == []
    for wrapper_type in ('AmpOptimWrapper', AmpOptimWrapper):
        with pytest.raises(InputError) as error:
            check_amp_available(dict(type=wrapper_type, loss_scale='dynamic'))
        message = str(error.value)
        assert '\n' not in message
        assert message.startswith('--amp (optim_wrapper.type=AmpOptimWrapper)'
                                  ' needs a CUDA GPU')
        assert 'train without --amp' in message
    # other wrappers, and no wrapper at all, need nothing
    for optim_wrapper in (dict(type='OptimWrapper'), dict(type=OptimWrapper),
                          None, {}):
        check_amp_available(optim_wrapper)


@pytest.mark.parametrize('device', mixed_precision.AMP_DEVICES)
def test_any_device_amp_optim_wrapper_runs_on_is_accepted(devices, device):
    devices(device)
    assert amp_devices_available() == [device]
    check_amp_available(dict(type='AmpOptimWrapper'))


def test_a_device_unknown_to_this_mmengine_counts_as_absent(
        devices, monkeypatch):
    devices('musa')
    monkeypatch.delattr(mmengine_device, 'is_musa_available')
    assert amp_devices_available() == []


def test_agrees_with_amp_optim_wrapper_on_this_machine():
    # the check says no exactly where mmengine's own assertion would fire
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    try:
        AmpOptimWrapper(optimizer=optimizer)
        built = True
    except AssertionError:
        built = False
    assert built == bool(amp_devices_available())


def test_amp_config_is_prepared_anywhere_and_checked_at_train_time(
        devices, tiny_config):
    devices()
    # a config is prepared without a GPU (a login node, a test) ...
    cfg = runs.prepare_train_config(tiny_config(), amp=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    # ... and training it says what it needs before building anything
    with pytest.raises(InputError, match='needs a CUDA GPU'):
        runs.train(cfg)
