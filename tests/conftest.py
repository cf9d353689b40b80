# Copyright (c) mmdet_yolor contributors. All rights reserved.
# Importing the plugin registers its modules in mmdet's registries, as
# `custom_imports` does for a config.
import mmdet_yolor  # noqa: F401
