# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLOR implicit knowledge for MMDetection 3.x.

Load it from a config with
``custom_imports = dict(imports=['mmdet_yolor'], allow_failed_imports=False)``.
Importing the package (docs/usage.md, "What importing the plugin does"):

- checks the OpenMMLab versions (an ImportError says what to install);
- adds ``mmdet_yolor`` to mmengine's config scopes (``mmdet_yolor::``);
- registers its modules into mmdet's registries;
- applies the stack fixes of :mod:`mmdet_yolor.compat` whose probes find
  their defect on this stack (``mmdet_yolor.compat.applied_fixes()`` names
  them; ``MMDET_YOLOR_DISABLE_FIXES=all`` keeps the stock stack).
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

compat.apply_import_fixes()

__all__ = ['__version__', 'check_versions', 'yolorize', 'fuse_implicit']
