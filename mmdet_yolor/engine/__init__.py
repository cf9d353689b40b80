# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .hooks import EpochSeedHook, NonFiniteLossHook

__all__ = ['EpochSeedHook', 'NonFiniteLossHook']
