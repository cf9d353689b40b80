# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The logic behind tools/analysis: parameter counts, benchmark, compare
tables and plots."""
