# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLOR implicit knowledge for MMDetection 3.x.

Importing the package checks the OpenMMLab versions, then registers its
modules into ``mmdet.registry.MODELS``: load it from a config with
``custom_imports = dict(imports=['mmdet_yolor'], allow_failed_imports=False)``.
"""
from .version import __version__, check_versions

check_versions()

from . import models  # noqa: E402,F401  (registers the modules)

__all__ = ['__version__', 'check_versions']
