# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Development tooling of mmdet_yolor, kept out of the installed package
(as mmdet keeps its ``.dev_scripts/``): the benchmarks (:mod:`.benchmark`,
:mod:`.onnxruntime_benchmark`), what dynamo makes of a model
(:mod:`.compiling`) and the zoo-wide sweep (:mod:`.zoo_sweep`).

The scripts beside this package (``.dev_scripts/*.py``) run it from a
source checkout; the tests import it through pytest's ``pythonpath``
(setup.cfg).
"""
