# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""``python -m mmdet_yolor.datasets``: generate the synthetic shapes data."""
from .shapes import main

main()
