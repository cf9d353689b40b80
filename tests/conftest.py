# Copyright (c) mmdet_yolor contributors. All rights reserved.
from mmdet.utils import register_all_modules

# Importing the plugin registers its modules in mmdet's registries, as
# `custom_imports` does for a config.
import mmdet_yolor  # noqa: F401

# tests/ is on sys.path (pytest inserts the directory of this rootdir
# conftest), so tests import their shared fixtures by name
# (crafted_work_dirs).

# As a Runner does: mmdet's modules with 'mmdet' as the default scope, so
# detectors built outside a Runner find their nested modules.
register_all_modules()
