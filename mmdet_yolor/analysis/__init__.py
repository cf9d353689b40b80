# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The logic behind tools/analysis and the demo's pictures: parameter
counts, benchmark, compare tables, plots and detections side by side."""
