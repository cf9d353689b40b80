# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What mixed-precision training needs from the machine.

mmengine's ``AmpOptimWrapper`` (what ``tools/train.py --amp`` selects)
asserts that one of the accelerators it knows is available, with a bare
``AssertionError``. :func:`check_amp_available` says the same in one line
that tells the user what to do; the training entry point calls it before
building the runner. A config is still prepared anywhere (a login node
without a GPU, a test): only training checks the machine.

On the CPU, autocast runs in bfloat16 without ``AmpOptimWrapper``: run the
model's loss inside ``mmengine.runner.amp.autocast(device_type='cpu',
dtype=torch.bfloat16)`` (tests/test_models/test_bfloat16.py).
"""
from typing import List, Optional

from mmengine import device as mmengine_device

from ..errors import InputError

# The devices AmpOptimWrapper.__init__ accepts (mmengine 0.10.7), each found
# by its mmengine.device.is_<device>_available; a function missing from an
# older mmengine is a device it does not know.
AMP_DEVICES = ('cuda', 'npu', 'mlu', 'musa')


def amp_devices_available() -> List[str]:
    """The devices of :data:`AMP_DEVICES` this machine has.

    Returns:
        list[str]: e.g. ``['cuda']``; empty on a CPU-only machine.
    """
    found = []
    for device in AMP_DEVICES:
        available = getattr(mmengine_device, f'is_{device}_available', None)
        if available is not None and available():
            found.append(device)
    return found


def _wrapper_type(optim_wrapper: Optional[dict]) -> Optional[str]:
    """The type name of an ``optim_wrapper`` config (a name or a class)."""
    wrapper_type = (optim_wrapper or {}).get('type')
    return getattr(wrapper_type, '__name__', wrapper_type)


def check_amp_available(optim_wrapper: Optional[dict]) -> None:
    """Raise :class:`~mmdet_yolor.errors.InputError` if ``optim_wrapper``
    is an ``AmpOptimWrapper`` and this machine has none of the devices it
    runs on.

    Args:
        optim_wrapper (dict, optional): The ``optim_wrapper`` of a training
            config.
    """
    if _wrapper_type(optim_wrapper) != 'AmpOptimWrapper' or \
            amp_devices_available():
        return
    raise InputError(
        '--amp (optim_wrapper.type=AmpOptimWrapper) needs a CUDA GPU (or an '
        'NPU, MLU or MUSA device: mmengine\'s AmpOptimWrapper runs on '
        'nothing else) and this machine has none; train without --amp (and '
        'with optim_wrapper.type=OptimWrapper), or on a machine with a GPU')
