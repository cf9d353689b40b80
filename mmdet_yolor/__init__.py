# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLOR implicit knowledge for MMDetection 3.x.

Importing the package checks the OpenMMLab versions, applies the stack
fixes of :mod:`mmdet_yolor.compat` and registers its modules into mmdet's
registries: load it from a config with
``custom_imports = dict(imports=['mmdet_yolor'], allow_failed_imports=False)``.
"""
from .package_data import register_config_scope
from .version import __version__, check_versions

check_versions()
register_config_scope()

# isort: off
from . import compat  # noqa: E402
from . import datasets, engine, models  # noqa: E402,F401  (registers)
from .deploy import fuse_implicit  # noqa: E402
from .toggle import yolorize  # noqa: E402
# isort: on

compat.register_checkpoint_loader()
compat.register_atomic_local_backend()

__all__ = ['__version__', 'check_versions', 'yolorize', 'fuse_implicit']
