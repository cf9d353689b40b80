# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The logic behind the user tools of tools/analysis and the demo's
pictures: compare tables, plots, parameter counts, detections side by side,
and the per-config check (:mod:`.config_check`)."""
